"""The chain client against a real anvil: a node that goes away and comes back, a transaction journaled
before a crash, log ranges refused by the node, and typed reads."""

import pytest

from opml.chain.anvil import dev_key
from opml.chain.client import JournalEntry, MemoryJournal, TransactionManager, connect
from opml.chain.deploy import deploy_with_defaults, llm_node_program, node_program, program_image
from opml.chain.errors import ChainUnavailable, TxReverted
from opml.chain.events import EventReader
from opml.chain.registry import Registry
from opml.models.formats import model_root
from opml.protocol.parameters import Parameters
from opml.protocol.types import ProgramKind, RequestStatus
from opml.resources import seed_model_dir

from ..faults import RpcProxy

PARAMETERS = Parameters(challenge_window=600, clock_budget=600)


@pytest.fixture()
def deployed(anvil):
    w3 = connect(anvil.url)
    owner = TransactionManager(w3, dev_key(0))
    deployment = deploy_with_defaults(w3, owner, PARAMETERS, "models/seed-mnist/model.bin")
    return w3, owner, deployment, Registry(w3, deployment.registry)


def test_deployment_registers_the_defaults_and_reads_back_typed(deployed):
    w3, owner, deployment, registry = deployed
    assert registry.parameters == PARAMETERS
    model = registry.model(deployment.model_id)
    assert model.root == model_root((seed_model_dir() / "model.bin").read_bytes())
    assert model.file_hash == w3.keccak((seed_model_dir() / "model.bin").read_bytes())
    for program_id, elf in (
        (deployment.node_program_id, node_program()),
        (deployment.llm_program_id, llm_node_program()),
    ):
        registered = registry.program(program_id)  # the two node programs of the two-phase game
        assert registered.kind == ProgramKind.GRAPH_NODES and registered.root == program_image(elf).root
    owner.send(registry.request_inference(deployment.program_id, deployment.model_id, b"\x01" * 784, 10_000), value=5)
    request = registry.request(registry.count("request"))
    assert request.status == RequestStatus.OPEN and request.fee == 5 and request.step_limit == 10_000
    assert request.requester == owner.address and request.live_claims == 0


def test_a_node_that_goes_away_gives_a_clear_error_and_the_client_recovers(anvil, deployed):
    _, _, deployment, _ = deployed
    with RpcProxy(anvil.url) as proxy:
        w3 = connect(proxy.url, timeout=5)
        sender = TransactionManager(w3, dev_key(5))
        registry = Registry(w3, deployment.registry)
        call = registry.request_inference(deployment.program_id, deployment.model_id, b"\x02" * 784, 10_000)
        sender.send(call)
        proxy.down()
        with pytest.raises(ChainUnavailable) as error:
            sender.send(call)
        assert "does not answer" in str(error.value)
        with pytest.raises(ChainUnavailable):
            registry.count("request")
        proxy.up()
        before = registry.count("request")
        sender.send(call)  # the same manager, its nonce still right
        assert registry.count("request") == before + 1


def test_a_transaction_journaled_before_a_crash_is_not_sent_again(deployed):
    w3, _, deployment, registry = deployed
    journal = MemoryJournal()
    key = dev_key(6)
    first = TransactionManager(w3, key, journal)
    call = registry.request_inference(deployment.program_id, deployment.model_id, b"\x03" * 784, 10_000)
    # what a crash between broadcast and receipt leaves behind: the journal entry, the transaction sent
    nonce = first.nonce()
    transaction = call.build_transaction(
        {"from": first.address, "nonce": nonce, "gas": 500_000, "chainId": w3.eth.chain_id}
    )
    signed = first.account.sign_transaction(transaction)
    journal.record(JournalEntry("request #3", bytes(signed.hash), nonce))
    w3.eth.send_raw_transaction(signed.raw_transaction)
    requests_before = registry.count("request")

    restarted = TransactionManager(w3, key, journal)
    sent = restarted.send(call, intent="request #3")
    assert sent.resumed and sent.tx_hash == bytes(signed.hash)
    assert registry.count("request") == requests_before  # nothing sent twice
    assert w3.eth.get_transaction_count(restarted.address) == nonce + 1


def test_an_intent_whose_transaction_never_left_is_sent_anew(deployed):
    w3, _, deployment, registry = deployed
    journal = MemoryJournal()
    journal.record(JournalEntry("request #4", b"\x11" * 32, 0))  # recorded, then the process died
    sender = TransactionManager(w3, dev_key(7), journal)
    before = registry.count("request")
    sent = sender.send(
        registry.request_inference(deployment.program_id, deployment.model_id, b"\x04" * 784, 10_000),
        intent="request #4",
    )
    assert not sent.resumed and registry.count("request") == before + 1


def test_a_revert_is_decoded_before_anything_is_sent(deployed):
    w3, _, deployment, registry = deployed
    sender = TransactionManager(w3, dev_key(8))
    nonce = sender.nonce()
    with pytest.raises(TxReverted) as error:
        sender.send(registry.request_inference(deployment.program_id, 99, b"", 10))
    assert error.value.name == "UnknownModel" and error.value.args_ == {"modelId": 99}
    with pytest.raises(TxReverted) as error:
        sender.send(registry.request_inference(deployment.program_id, deployment.model_id, b"", 0))
    assert error.value.name == "InvalidStepLimit"
    assert sender.nonce() == nonce and w3.eth.get_transaction_count(sender.address) == nonce


def test_events_are_read_in_ranges_the_node_accepts(anvil, deployed):
    w3, owner, deployment, registry = deployed
    for index in range(6):
        owner.send(registry.request_inference(deployment.program_id, deployment.model_id, bytes([index]) * 10, 1_000))
    with RpcProxy(anvil.url, max_log_range=3) as proxy:
        limited = connect(proxy.url)
        reader = EventReader(limited, Registry(limited, deployment.registry).contract, max_range=64)
        events, cursor = reader.read(deployment.start_block)
        assert proxy.refused_log_ranges > 0 and reader.range <= 3
        again, same = reader.read(cursor)
    assert again == [] and same == cursor
    requested = [event for event in events if event.name == "InferenceRequested"]
    assert len(requested) == registry.count("request") == 6  # every request of this deployment, in order
    assert [event.args["input"][:1] for event in requested] == [bytes([i]) for i in range(6)]
    assert cursor == w3.eth.block_number
