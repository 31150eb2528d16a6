from modelyard.console import main

main()
