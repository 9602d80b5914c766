"""Neural architecture search: DARTS, MetaNAS and warm-started DARTS.

Needs torch (the ``nas`` extra: ``pip install torch==2.13.0`` first, then
``pip install 'autometa[nas]'``); importing this subpackage without it raises
:class:`autometa.exceptions.AutometaError` (also an ``ImportError``) with that hint. ::

    from autometa.nas import DARTSSearch, digits_data, train_genotype

    train, valid = digits_data().split(0.5)
    result = DARTSSearch(channels=8, n_cells=3, arch_lr=3e-3).search(train, valid, steps=200)
    result.genotype.save("genotype.json")
"""

from autometa.nas._imports import require_torch_for_nas

require_torch_for_nas()

from autometa.nas._data import ImageData, MinibatchSampler, digits_data, digits_task  # noqa: E402
from autometa.nas._genotype import Genotype, discretize, edge_count  # noqa: E402
from autometa.nas._metanas import (  # noqa: E402
    AdaptedArchitecture,
    MetaNAS,
    MetaNASEvaluation,
    MetaNASRecord,
    few_shot_accuracy,
)
from autometa.nas._network import (  # noqa: E402
    GenotypeNetwork,
    MixedEdge,
    SearchNetwork,
    count_parameters,
    reduction_cells,
)
from autometa.nas._ops import DARTS_OPS, FEWSHOT_OPS, OPERATIONS, BNSettings  # noqa: E402
from autometa.nas._search import (  # noqa: E402
    AuxiliarySkip,
    DARTSSearch,
    HessianEarlyStop,
    SearchRecord,
    SearchResult,
    accuracy,
    arch_gradient,
    dominant_hessian_eigenvalue,
)
from autometa.nas._train import TrainResult, train_genotype, train_network  # noqa: E402
from autometa.nas._warmstart import (  # noqa: E402
    ArchitectureRecord,
    ArchitectureStore,
    WarmStart,
    image_task_embedding,
    table_descriptor,
)

__all__ = [
    "AdaptedArchitecture",
    "MetaNAS",
    "MetaNASEvaluation",
    "MetaNASRecord",
    "few_shot_accuracy",
    "DARTS_OPS",
    "FEWSHOT_OPS",
    "OPERATIONS",
    "ArchitectureRecord",
    "ArchitectureStore",
    "AuxiliarySkip",
    "BNSettings",
    "DARTSSearch",
    "Genotype",
    "GenotypeNetwork",
    "HessianEarlyStop",
    "ImageData",
    "MinibatchSampler",
    "MixedEdge",
    "SearchNetwork",
    "SearchRecord",
    "SearchResult",
    "TrainResult",
    "WarmStart",
    "accuracy",
    "arch_gradient",
    "count_parameters",
    "digits_data",
    "digits_task",
    "discretize",
    "dominant_hessian_eigenvalue",
    "edge_count",
    "image_task_embedding",
    "reduction_cells",
    "table_descriptor",
    "train_genotype",
    "train_network",
]
