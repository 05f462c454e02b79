from .main import main, parser

main(parser().parse_args())
