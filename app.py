"""The WSGI app Zappa (and `flask --app app`) loads."""
from callback import create_app

app = create_app()
