from hazelog.bench.cli import main

main()
