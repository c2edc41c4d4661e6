"""playbooks/diagram.yml through a real ansible-playbook (no root needed,
no host touched): the shipped lab and a generated 30-host lab drawn by the
real dot into an SVG that names every host, VPC, network and endpoint; a
PNG when asked; a re-run that writes nothing; check mode; an invalid
inventory that fails with the validator's errors and writes nothing."""
import os
import shutil

import pytest
import yaml

from diagrams import assert_drawn, script, svg_texts

from .conftest import LAB_INVENTORY, ROOT

PLAYBOOK = os.path.join(ROOT, "playbooks", "diagram.yml")
DEFAULT = "mizar-topology.svg"  # in the current directory
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def workdir(ansible):
    """The playbook's current directory, emptied of earlier pictures."""
    for name in os.listdir(ansible.workdir):
        if name.endswith((".svg", ".png")):
            os.unlink(os.path.join(ansible.workdir, name))
    return ansible.workdir


def test_draws_the_lab_into_the_current_directory_and_a_rerun_writes_nothing(ansible, workdir):
    first = ansible.playbook(LAB_INVENTORY, "mizar.transit.diagram")
    assert first.ok() and first.changed() == 1, first
    svg = os.path.join(workdir, DEFAULT)
    with open(svg, "rb") as f:
        data = f.read()
    assert_drawn(svg_texts(data), LAB_INVENTORY)
    assert not os.path.exists(os.path.join(workdir, "mizar-topology.png"))
    stamp = os.stat(svg).st_mtime_ns
    again = ansible.playbook(LAB_INVENTORY, PLAYBOOK)
    assert again.ok() and again.changed() == 0, again
    assert os.stat(svg).st_mtime_ns == stamp


def test_a_png_when_asked_at_a_path_of_the_users(ansible, workdir, tmp_path):
    svg = tmp_path / "pictures" / "lab.svg"
    run = ansible.playbook(LAB_INVENTORY, PLAYBOOK, "-e", "mizar_diagram_path=%s" % svg, "-e", "mizar_diagram_png=true")
    assert run.ok() and run.changed() == 1, run
    assert (tmp_path / "pictures" / "lab.png").read_bytes().startswith(PNG_MAGIC)
    assert_drawn(svg_texts(svg.read_bytes()), LAB_INVENTORY)
    assert not os.path.exists(os.path.join(workdir, DEFAULT))


def test_draws_a_30_host_lab(ansible, workdir, tmp_path):
    lab30 = script("bench/labgen.py").write(30, str(tmp_path / "lab30"))
    run = ansible.playbook(lab30, PLAYBOOK)
    assert run.ok() and run.changed() == 1, run
    with open(os.path.join(workdir, DEFAULT), "rb") as f:
        assert_drawn(svg_texts(f.read()), lab30)


def test_check_mode_writes_nothing_and_diff_shows_the_change(ansible, workdir, tmp_path):
    lab = tmp_path / "lab"
    shutil.copytree(LAB_INVENTORY, str(lab))
    assert ansible.playbook(str(lab), PLAYBOOK).ok()
    path = lab / "group_vars" / "all.yml"
    tenants = yaml.safe_load(path.read_text())
    tenants["mizar_vpcs"][1]["networks"][0]["endpoints"].append(
        {"name": "red3", "ip": "10.0.1.12", "host": "mzh2", "netns": "red3"})
    path.write_text(yaml.safe_dump(tenants))
    svg = os.path.join(workdir, DEFAULT)
    with open(svg, "rb") as f:
        before = f.read()
    check = ansible.playbook(str(lab), PLAYBOOK, "--check", "--diff")
    assert check.ok() and check.changed() == 1, check
    assert "red3" in check.stdout
    with open(svg, "rb") as f:
        assert f.read() == before
    run = ansible.playbook(str(lab), PLAYBOOK)
    assert run.ok() and run.changed() == 1, run
    with open(svg, "rb") as f:
        assert "red3 10.0.1.12" in svg_texts(f.read())


def test_an_invalid_inventory_fails_with_the_validators_errors_and_writes_nothing(ansible, workdir, tmp_path):
    lab = tmp_path / "bad"
    shutil.copytree(LAB_INVENTORY, str(lab))
    path = lab / "group_vars" / "all.yml"
    tenants = yaml.safe_load(path.read_text())
    tenants["mizar_vpcs"][0]["networks"][0]["endpoints"][0]["host"] = "mzh9"
    tenants["mizar_vpcs"][1]["vni"] = 100
    path.write_text(yaml.safe_dump(tenants))
    run = ansible.playbook(str(lab), PLAYBOOK)
    assert run.rc != 0 and not run.ok(), run
    assert "error(s) in the mizar inventory; nothing was rendered, no host was touched" in run.stdout
    assert "mizar_vpcs[0].networks[0].endpoints[0].host" in run.stdout and "mizar_vpcs[1].vni" in run.stdout
    assert not os.path.exists(os.path.join(workdir, DEFAULT))
