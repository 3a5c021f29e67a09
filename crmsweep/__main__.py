from crmsweep.launch import main

main()
