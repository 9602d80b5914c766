from autometa.cli import main

main()
