"""The example configs in Deploy/ load: every plugin they name is found,
checked and initialised (`northstar config check`), once their secrets are
in the environment, and not before."""
import json
import re

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


def test_the_kubernetes_example_gives_the_drain_the_time_it_needs():
    """Deploy/kubernetes.yaml and the config it mounts agree: the grace
    period covers the preStop pause, the drain and the deadline, and the
    readiness probe sees the 503 well before the listener closes."""
    yaml = (ROOT / "Deploy" / "kubernetes.yaml").read_text()
    node = json.loads((ROOT / "Deploy" / "northstar.prod.json").read_text())["node"]

    def number(key):
        match = re.search(rf"^\s*{key}:\s*(\d+)", yaml, flags=re.M)
        assert match, f"kubernetes.yaml has no {key}"
        return int(match.group(1))

    pause = int(re.search(r'command: \["sleep", "(\d+)"\]', yaml).group(1))
    assert number("terminationGracePeriodSeconds") > pause + node["drain_seconds"] + node["drain_deadline_seconds"]
    assert "path: /readyz" in yaml and number("periodSeconds") * 2 < node["drain_seconds"]
    assert "northstar.json=Deploy/northstar.prod.json" in yaml and '"/etc/northstar/northstar.json"' in yaml
