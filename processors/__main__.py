from nnmon.processors.cli.app import main

main()
