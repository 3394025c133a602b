from extractor.cli import main

main(prog_name="radar-extract")
