from localproc.entry import main

main()
