from tagport.cli.main import app

app(prog_name="tagport")
