from signdigits.cli import main

main()
