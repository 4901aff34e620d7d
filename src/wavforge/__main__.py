from wavforge.cli import main

main()
