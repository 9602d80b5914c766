"""Neural architecture search: DARTS, MetaNAS and warm-started DARTS.

Needs torch (the ``nas`` extra: ``pip install torch==2.13.0`` first, then
``pip install 'autometa[nas]'``); importing this subpackage without it raises
:class:`autometa.extras.MissingDependencyError` (an
:class:`~autometa.exceptions.AutometaError` and an ``ImportError``) with that hint. ::

    from autometa.nas import AuxiliarySkip, DARTSSearch, digits_data, train_genotype

    train, valid = digits_data().split(0.5)
    search = DARTSSearch(channels=8, n_cells=3, n_nodes=3, arch_lr=3e-3, guard=AuxiliarySkip())
    result = search.search(train, valid, steps=200, checkpoint="search.pt")
    result.genotype.save("genotype.json")
    net, scores = train_genotype(result.genotype, train, valid, steps=500, channels=16, n_cells=3)

Warm start from the most similar stored task::

    store = ArchitectureStore("nas-store")
    store.add("digits-0-4", image_task_embedding(task), result, weights=search.network_.state_dict())
    start = store.warm_start(image_task_embedding(new_task), ops=DARTS_OPS, shape=(9, 8))
    search.search(train, valid, steps=80, init_alphas=start.alphas)

Tables (classification) are searched with fully connected operations, rows as
``(features, 1, 1)`` tensors, and described in the store by their meta-features::

    rows, _ = ImageData.split_index(len(task.X), 0.5)
    train, valid = table_data(task, fit_rows=rows).split(0.5)   # the same split
    result = DARTSSearch(ops=TABULAR_OPS, channels=16).search(train, valid, steps=300)
    store.add("credit", table_descriptor(task), result)

The data of ``autometa nas search | train`` by name or path, and their shared seeded
50/25/25 split (the search never sees the rows training tests on; a table's encoder is
fitted on the train rows only)::

    data, task = load_data("credit.csv", label="Status", seed=0)   # task: None for images
    train, valid, test = split_data(data, seed=0)

MetaNAS on few-shot episodes (:class:`autometa.metalearn.GlyphTasks`)::

    net = SearchNetwork(1, 5, channels=8, n_cells=3, n_nodes=2, ops=FEWSHOT_OPS,
                        bn=BNSettings(affine=False, track_running_stats=False))
    learner = MetaNAS(net)
    learner.meta_train(GlyphTasks(ways=5, shots=1, image_size=16), iterations=200)
    adapted = learner.adapt(support_x, support_y)   # task-adapted, pruned network
    adapted(query_x).argmax(-1)
"""

from autometa.extras import require_torch

require_torch("autometa.nas")

from autometa.nas._data import (  # noqa: E402
    ImageData,
    MinibatchSampler,
    digits_data,
    digits_task,
    glyph_task,
    load_data,
    split_data,
    split_rows,
    table_data,
)
from autometa.nas._genotype import Genotype, discretize, edge_count  # noqa: E402
from autometa.nas._metanas import (  # noqa: E402
    AdaptedArchitecture,
    MetaNAS,
    MetaNASEvaluation,
    MetaNASRecord,
    few_shot_accuracy,
    mean_ci,
)
from autometa.nas._network import (  # noqa: E402
    GenotypeNetwork,
    MixedEdge,
    SearchNetwork,
    count_parameters,
    reduction_cells,
)
from autometa.nas._ops import DARTS_OPS, FEWSHOT_OPS, OPERATIONS, TABULAR_OPS, BNSettings  # noqa: E402
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
    "TABULAR_OPS",
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
    "glyph_task",
    "load_data",
    "mean_ci",
    "split_data",
    "split_rows",
    "table_data",
    "discretize",
    "dominant_hessian_eigenvalue",
    "edge_count",
    "image_task_embedding",
    "reduction_cells",
    "table_descriptor",
    "train_genotype",
    "train_network",
]
