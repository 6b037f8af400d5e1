"""The example configs in Deploy/ load: every plugin they name is found,
checked and initialised (`northstar config check`), once their secrets are
in the environment, and not before."""
import json

from conftest import BIN, ROOT, northstar


def test_production_example_loads_every_plugin(data_dir):
    config = json.loads((ROOT / "Deploy" / "northstar.prod.json").read_text())
    config["node"]["plugin_dir"] = str(BIN)  # where this build put the plugins
    config["node"]["data_dir"] = str(data_dir)
    path = data_dir / "prod.json"
    path.write_text(json.dumps(config))
    secrets = {"NORTHSTAR_JWT_HS256_SECRET": "k" * 40, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}
    checked = northstar("config", "check", "--config", path, env=secrets)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for name in ("jwt", "apikey", "sse", "ws", "s3"):
        assert name in checked.stdout + checked.stderr
    missing = northstar("config", "check", "--config", path, env={"NORTHSTAR_JWT_HS256_SECRET": "k" * 40})
    assert missing.returncode == 2 and "environment variable AWS_" in missing.stderr and "is not set" in missing.stderr
