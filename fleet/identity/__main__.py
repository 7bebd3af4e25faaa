from fleet.identity.cli import main

main()
