from genae.cli import main

main()
