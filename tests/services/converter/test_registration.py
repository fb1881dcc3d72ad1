"""On-chain registration on a real anvil node (its own, on a free port, so it runs beside other tests):
registerModel from the converter's key with the on-chain id recorded, idempotent across calls and
restarts, a registration mined before a crash not sent again, a reset chain registered anew, and a
chain that is down or not deployed yet answered with 503 and a reason."""

import sqlite3

import pytest
import torch
from web3 import Web3

from opml.chain.anvil import Anvil, dev_key
from opml.chain.client import TransactionManager, connect
from opml.chain.deploy import deploy_contracts, register_model
from opml.chain.registry import Registry
from opml.models.training import SeedMLP
from opml.protocol.parameters import Parameters
from opml.protocol.types import Model

from .conftest import SEED, running_converter, state_dict_bytes

pytestmark = pytest.mark.chain

SEED_STATE_DICT = (SEED / "mnist-small.state_dict").read_bytes()
CONVERTER_KEY = dev_key(3)


def deploy(url: str, path) -> Registry:
    """Deploy the contracts from dev account 0 and write the deployment file the converter reads."""
    w3 = connect(url)
    deployment = deploy_contracts(w3, TransactionManager(w3, dev_key(0)), Parameters())
    deployment.write(path)
    return Registry(w3, deployment.registry)


def some_model(seed: int) -> bytes:
    torch.manual_seed(seed)
    return state_dict_bytes(SeedMLP(hidden=3 + seed))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with Anvil() as node:
        path = tmp_path_factory.mktemp("chain") / "deployment.json"
        yield node, deploy(node.url, path), path


def registering(data_dir, node: Anvil, deployment_path):
    return running_converter(data_dir, rpc_url=node.url, deployment_path=deployment_path, private_key=CONVERTER_KEY)


def forget_registration(converter, root: str) -> None:
    """What a crash after the transaction was mined, before the row was updated, leaves behind."""
    with sqlite3.connect(converter.settings.database_url) as database:
        database.execute("UPDATE models SET onchain_model_id = NULL, registry_address = NULL WHERE root = ?", (root,))


def test_an_upload_can_register_its_model(chain, tmp_path):
    node, registry, path = chain
    with registering(tmp_path, node, path) as converter:
        body = converter.created(SEED_STATE_DICT, register=True)
        model_id = body["onchain_model_id"]
        assert isinstance(model_id, int) and body["registry"] == registry.address
        assert registry.model(model_id) == Model(
            Web3.to_bytes(hexstr=body["root"]), Web3.to_bytes(hexstr=body["file_hash"]), body["file_url"]
        )
        assert converter.http.get(f"/models/{body['id']}").json() == body
        metrics = converter.http.get("/metrics").text
        assert 'converter_models_registered_total{outcome="sent"} 1.0' in metrics


def test_registering_again_sends_nothing_even_after_a_restart_or_a_crash(chain, tmp_path):
    node, registry, path = chain
    with registering(tmp_path, node, path) as converter:
        root = converter.created(some_model(1))["id"]
        first = converter.http.post(f"/models/{root}/register")
        assert first.status_code == 200
        model_id, count = first.json()["onchain_model_id"], registry.count("model")
        assert converter.http.post(f"/models/{root}/register").json()["onchain_model_id"] == model_id
        forget_registration(converter, root)
        assert converter.http.get(f"/models/{root}").json()["onchain_model_id"] is None
        assert converter.http.post(f"/models/{root}/register").json()["onchain_model_id"] == model_id
    with registering(tmp_path, node, path) as converter:
        assert converter.http.post(f"/models/{root}/register").json()["onchain_model_id"] == model_id
        assert 'converter_models_registered_total{outcome="known"} 1.0' in converter.http.get("/metrics").text
    assert registry.count("model") == count


def test_a_reset_chain_gets_the_model_registered_anew_and_a_chain_that_is_down_is_a_503(tmp_path):
    path = tmp_path / "deployment.json"
    with Anvil() as node:
        deploy(node.url, path)
        with registering(tmp_path / "converter", node, path) as converter:
            root = converter.created(SEED_STATE_DICT, register=True)["id"]
            assert converter.http.get(f"/models/{root}").json()["onchain_model_id"] == 1
            other = converter.created(some_model(2))["id"]
    port = node.port
    with registering(tmp_path / "converter", node, path) as converter:
        down = converter.http.post(f"/models/{other}/register")
        assert down.status_code == 503 and "does not answer" in down.json()["message"]
        stored_anyway = converter.upload(some_model(3), register=True)
        assert stored_anyway.status_code == 503 and "is stored but not registered" in stored_anyway.json()["message"]
        assert converter.model_count() == 3
    with Anvil(port=port) as node:  # the same addresses on a fresh chain, where id 1 is another model
        registry = deploy(node.url, path)
        w3 = connect(node.url)
        register_model(registry, TransactionManager(w3, dev_key(0)), (SEED / "input_7.bin").read_bytes(), "other")
        with registering(tmp_path / "converter", node, path) as converter:
            again = converter.http.post(f"/models/{root}/register").json()
            assert again["onchain_model_id"] == 2 and registry.model(2).root == Web3.to_bytes(hexstr=root)


def test_registration_waits_for_a_deployment(tmp_path):
    with running_converter(
        tmp_path, rpc_url="http://127.0.0.1:9", deployment_path=tmp_path / "missing.json", private_key=CONVERTER_KEY
    ) as converter:
        root = converter.created(SEED_STATE_DICT)["id"]
        response = converter.http.post(f"/models/{root}/register")
        assert response.status_code == 503 and "no deployment file" in response.json()["message"]
