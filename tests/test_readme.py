from pathlib import Path

from appointments_gateway.settings import SANDBOX_SETTINGS, SETTINGS

ROOT = Path(__file__).resolve().parents[1]


def test_readme_documents_every_flag_and_environment_variable():
    readme = (ROOT / "README.md").read_text()
    for setting in (*SETTINGS, *SANDBOX_SETTINGS):
        assert f"`{setting.env}`" in readme, setting.env
        assert f"`{setting.flag}`" in readme, setting.flag


def test_ci_runs_the_test_command_readme_gives():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test " in readme
    assert "make run " in readme
