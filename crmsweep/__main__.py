from crmsweep.cli import main

main()
