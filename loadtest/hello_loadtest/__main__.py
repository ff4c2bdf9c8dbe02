from hello_loadtest.cli import main

main()
