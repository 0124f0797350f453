from hazelog_tools.bench.cli import main

main()
