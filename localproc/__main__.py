from localproc.cli import main

main()
