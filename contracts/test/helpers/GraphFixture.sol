// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceRegistry} from "../../src/InferenceRegistry.sol";
import {Proofs} from "../../src/Proofs.sol";
import {VMState} from "../../src/VMState.sol";
import {MerkleTrees} from "./MerkleTrees.sol";
import {NodeRuns} from "./NodeRuns.sol";
import {RegistryFixture} from "./RegistryFixture.sol";
import {SparseMemory} from "./SparseMemory.sol";
import {ValueTrees} from "./ValueTrees.sol";

/// @notice The linked two-phase game (docs/two-phase.md) on a small graph whose nodes the tiny node program of
///         NodeRuns really computes: a GraphNodes program (that program) and a model (its tag and the graph's
///         node count) registered, a request with an input, the honest values of the graph, claims of value
///         trees, phase 1 over their states, links, and phase 2 over real MIPS runs ended by MIPS.step.
///
///         The graph has NODES nodes; node j reads the slots `inputsOf(j)` (1, 2 or 4 operands, one slot twice)
///         and its value is what the program writes for it: (j, the model's tag, the first word of its first
///         operand + 1).
abstract contract GraphFixture is RegistryFixture {
    using SparseMemory for SparseMemory.Memory;

    /// @dev How a defender plays phase 2.
    enum Phase2 {
        Honest, // the true run's hashes
        OwnRun, // the hashes of another run (from another start state than the registry built)
        Fabricated // true hashes before `divergence`, made up from it on
    }

    struct Defender {
        Phase2 kind;
        uint64 divergence; // for Fabricated
        bytes32[] run; // for OwnRun: its states' hashes
    }

    uint32 internal constant NODE_ENTRY = 0x1000;
    uint64 internal constant NODES = 6;
    uint32 internal constant TAG = 0x4D4F4441; // "MODA": the registered model of the request
    uint32 internal constant OTHER_TAG = 0x4D4F4442; // "MODB": another registered model
    uint64 internal constant NODE_STEP_LIMIT = 64; // a graph request's step limit bounds each node's run
    bytes internal constant INPUT = hex"0a0b0c0d0e0f";

    address internal constant STRANGER = address(0x5757);

    SparseMemory.Memory internal nodeProgram;
    bytes32 internal nodeProgramRoot;
    uint256 internal nodeProgramId;
    uint256 internal graphModelId;
    uint256 internal otherModelId;
    uint256 internal graphRequestId;
    /// @dev The value trees claimed, by claim id.
    mapping(uint256 => bytes32[]) internal claimedRoots;

    function setUp() public virtual override {
        super.setUp();
        SparseMemory.Memory memory p = NodeRuns.program(NODE_ENTRY);
        nodeProgram.addrs = p.addrs;
        nodeProgram.leaves = p.leaves;
        nodeProgramRoot = MerkleTrees.subtreeRoot(p, 23, 0);
        nodeProgramId = registry.registerProgram(nodeProgramRoot, NODE_ENTRY, InferenceRegistry.ProgramKind.GraphNodes);
        graphModelId = registry.registerModel(modelRoot(TAG), keccak256("model A"), "model A");
        otherModelId = registry.registerModel(modelRoot(OTHER_TAG), keccak256("model B"), "model B");
        graphRequestId = graphRequest(graphModelId);
        fund(STRANGER, 100 ether);
    }

    // --- the graph, its model and its values ---------------------------------------------------------

    /// @dev Node j's operand slots: one operand, two, one, four, the same slot twice, one.
    function inputsOf(uint64 node) internal pure returns (uint32[] memory slots) {
        if (node == 1) {
            slots = new uint32[](2);
            (slots[0], slots[1]) = (1, 0);
        } else if (node == 3) {
            slots = new uint32[](4);
            (slots[0], slots[1], slots[2], slots[3]) = (3, 2, 1, 0);
        } else if (node == 4) {
            slots = new uint32[](2);
            (slots[0], slots[1]) = (4, 4);
        } else {
            slots = new uint32[](1);
            slots[0] = uint32(node);
        }
    }

    function modelBytes(uint32 tag) internal pure returns (bytes memory) {
        return NodeRuns.model(tag, NODES);
    }

    /// @dev M: the root of the model region holding the model's bytes (a graph of NODES nodes).
    function modelRoot(uint32 tag) internal pure returns (bytes32) {
        return modelRootOf(modelBytes(tag));
    }

    function modelRootOf(bytes memory model) internal pure returns (bytes32) {
        SparseMemory.Memory memory m = NodeRuns.withRegion(SparseMemory.empty(), NodeRuns.MODEL, model);
        return MerkleTrees.subtreeRoot(m, 25, uint256(NodeRuns.MODEL) >> 5);
    }

    function graphRequest(uint256 modelId_) internal returns (uint256) {
        deposited[REQUESTER] += FEE;
        vm.prank(REQUESTER);
        return registry.requestInference{value: FEE}(nodeProgramId, modelId_, INPUT, address(0), NODE_STEP_LIMIT);
    }

    /// @dev The run's values computed with the model tagged `tag`: value 0 the input, value j + 1 node j's.
    function valuesWith(uint32 tag) internal pure returns (bytes[] memory values) {
        values = new bytes[](NODES + 1);
        values[0] = INPUT;
        for (uint64 j = 0; j < NODES; ++j) {
            values[j + 1] = NodeRuns.valueOf(j, tag, values[inputsOf(j)[0]]);
        }
    }

    function honestValues() internal pure returns (bytes[] memory) {
        return valuesWith(TAG);
    }

    function rootsOf(bytes[] memory values) internal pure returns (bytes32[] memory roots) {
        roots = new bytes32[](values.length);
        for (uint256 j = 0; j < values.length; ++j) {
            roots[j] = ValueTrees.valueRoot(values[j]);
        }
    }

    function honestRoots() internal pure returns (bytes32[] memory) {
        return rootsOf(honestValues());
    }

    /// @dev The first `count` roots.
    function prefix(bytes32[] memory roots, uint256 count) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](count);
        for (uint256 j = 0; j < count; ++j) {
            p[j] = roots[j];
        }
    }

    function copyRoots(bytes32[] memory roots) internal pure returns (bytes32[] memory) {
        return prefix(roots, roots.length);
    }

    // --- claims ---------------------------------------------------------------------------------------

    /// @dev Commit, let a block pass, reveal a claim of the value tree `roots` with `nodeCount` nodes.
    function graphClaim(address claimant, bytes32[] memory roots, uint64 nodeCount) internal returns (uint256 claimId) {
        bytes32 valuesRoot = ValueTrees.state(roots, nodeCount);
        vm.prank(claimant);
        registry.commitClaim(
            graphRequestId,
            registry.commitmentOf(graphRequestId, registry.graphResultIdOf(valuesRoot, nodeCount), claimant)
        );
        vm.roll(blockNumber() + 1);
        deposited[claimant] += CLAIM_BOND;
        vm.prank(claimant);
        claimId = registry.submitGraphClaim{value: CLAIM_BOND}(graphRequestId, valuesRoot, nodeCount);
        claimedRoots[claimId] = roots;
    }

    function honestGraphClaim(address claimant) internal returns (uint256) {
        return graphClaim(claimant, honestRoots(), NODES);
    }

    /// @dev Finalize a claim of the honest run with its output, value NODES.
    function finalizeHonestGraph(uint256 claimId) internal {
        bytes[] memory values = honestValues();
        registry.finalizeGraph(claimId, values[NODES], ValueTrees.siblings(rootsOf(values), NODES, NODES));
    }

    function claimantOf(uint256 gameId) internal view returns (address) {
        return registry.getClaim(game(gameId).claimId).claimant;
    }

    function rootsOfGame(uint256 gameId) internal view returns (bytes32[] memory) {
        return claimedRoots[game(gameId).claimId];
    }

    // --- phase 1 --------------------------------------------------------------------------------------

    /// @dev The defender's phase-1 hashes: its own tree's S_t at the interior points.
    function graphHashes(uint256 gameId) internal view returns (bytes32[] memory hashes) {
        InferenceRegistry.Game memory g = game(gameId);
        bytes32[] memory roots = rootsOfGame(gameId);
        uint64[] memory steps = registry.points(g.lo, g.hi);
        hashes = new bytes32[](steps.length - 2);
        for (uint256 i = 0; i < hashes.length; ++i) {
            hashes[i] = ValueTrees.state(roots, steps[i + 1]);
        }
    }

    function bisectGraph(uint256 gameId) internal returns (bytes32[] memory hashes) {
        hashes = graphHashes(gameId);
        vm.prank(claimantOf(gameId));
        registry.bisect(gameId, hashes);
    }

    /// @dev The honest challenger's segment: the first whose end is not the honest run's S_t (the last when it
    ///      agrees with every interior state: the disputed claim itself is another result).
    function honestGraphSegment(uint256 gameId, bytes32[] memory hashes) internal view returns (uint256) {
        InferenceRegistry.Game memory g = game(gameId);
        bytes32[] memory truth = honestRoots();
        uint64[] memory steps = registry.points(g.lo, g.hi);
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (hashes[i] != ValueTrees.state(truth, steps[i + 1])) return i;
        }
        return hashes.length;
    }

    /// @dev The segment of the current interval that holds [node, node + 1].
    function segmentHolding(uint256 gameId, uint64 node) internal view returns (uint256 segment) {
        InferenceRegistry.Game memory g = game(gameId);
        uint64[] memory steps = registry.points(g.lo, g.hi);
        while (steps[segment + 1] <= node) ++segment;
    }

    function selectAs(uint256 gameId, uint256 segment, bytes32[] memory hashes) internal {
        vm.prank(game(gameId).challenger);
        registry.select(gameId, segment, hashes);
    }

    /// @dev Phase 1 played by the claim's defender and an honest challenger down to one node.
    function playPhase1Honestly(uint256 gameId) internal {
        while (game(gameId).hi - game(gameId).lo > 1) {
            bytes32[] memory hashes = bisectGraph(gameId);
            selectAs(gameId, honestGraphSegment(gameId, hashes), hashes);
        }
    }

    /// @dev Phase 1 played down to [node, node + 1] (a challenger who picks the node).
    function playPhase1To(uint256 gameId, uint64 node) internal {
        while (game(gameId).hi - game(gameId).lo > 1) {
            bytes32[] memory hashes = bisectGraph(gameId);
            selectAs(gameId, segmentHolding(gameId, node), hashes);
        }
        assertEq(game(gameId).lo, node, "phase 1 reached the node");
    }

    // --- the link ---------------------------------------------------------------------------------------

    function opening(bytes32[] memory roots, uint256 slot, uint256 t) internal pure returns (Proofs.Opening memory o) {
        o.siblings = ValueTrees.siblings(roots, slot, t);
        if (slot < roots.length) o.value = roots[slot];
    }

    /// @dev The openings of a link of `node` with `slots`, in the tree `roots`.
    function openingsOf(bytes32[] memory roots, uint64 node, uint32[] memory slots)
        internal
        pure
        returns (Proofs.LinkOpenings memory o)
    {
        o.operandSlots = slots;
        o.operands = new Proofs.Opening[](slots.length);
        for (uint256 j = 0; j < slots.length; ++j) {
            o.operands[j] = opening(roots, slots[j], node);
        }
        o.input = opening(roots, 0, node);
        o.output = opening(roots, node + 1, node);
        o.output.value = roots[node + 1];
    }

    /// @dev The same openings with every empty subtree given as 32 zero bytes (less calldata).
    function compressed(Proofs.LinkOpenings memory o) internal pure returns (Proofs.LinkOpenings memory c) {
        c.operandSlots = o.operandSlots;
        c.operands = new Proofs.Opening[](o.operands.length);
        for (uint256 j = 0; j < o.operands.length; ++j) {
            c.operands[j] = Proofs.Opening(o.operands[j].value, ValueTrees.compress(o.operands[j].siblings));
        }
        c.input = Proofs.Opening(o.input.value, ValueTrees.compress(o.input.siblings));
        c.output = Proofs.Opening(o.output.value, ValueTrees.compress(o.output.siblings));
    }

    /// @dev The node run of `node` for a claim of `nodeCount` nodes with operand `slots`, from the values
    ///      `values` and the model tagged `tag`.
    function specOf(uint64 node, uint64 nodeCount, uint32[] memory slots, bytes[] memory values, uint32 tag)
        internal
        pure
        returns (NodeRuns.Spec memory spec)
    {
        spec.entry = NODE_ENTRY;
        spec.node = node;
        spec.nodeCount = nodeCount;
        spec.slots = slots;
        spec.operands = new bytes[](slots.length);
        for (uint256 j = 0; j < slots.length; ++j) {
            spec.operands[j] = values[slots[j]];
        }
        spec.input = values[0];
        spec.model = modelBytes(tag);
    }

    /// @dev The true run of node `node` of a claim of `nodeCount` nodes: its own operands, the honest values,
    ///      the registered model.
    function honestSpec(uint64 node, uint64 nodeCount) internal pure returns (NodeRuns.Spec memory) {
        return specOf(node, nodeCount, inputsOf(node), honestValues(), TAG);
    }

    function traceOf(NodeRuns.Spec memory spec) internal view returns (NodeRuns.Trace memory) {
        return NodeRuns.trace(spec, _nodeProgram());
    }

    function _nodeProgram() internal view returns (SparseMemory.Memory memory m) {
        m.addrs = nodeProgram.addrs;
        m.leaves = nodeProgram.leaves;
    }

    /// @dev What the registry computes for the start state of `spec` (Proofs.nodeStartState from roots).
    function registryStartState(NodeRuns.Spec memory spec, bytes32 modelRoot_) internal view returns (bytes32) {
        bytes32[] memory operandRoots = new bytes32[](spec.operands.length);
        for (uint256 j = 0; j < spec.operands.length; ++j) {
            operandRoots[j] = ValueTrees.valueRoot(spec.operands[j]);
        }
        return proofs.nodeStartState(
            nodeProgramRoot,
            NODE_ENTRY,
            ValueTrees.valueRoot(spec.input),
            modelRoot_,
            NodeRuns.header(spec),
            operandRoots
        );
    }

    function linkAs(
        address sender,
        uint256 gameId,
        Proofs.LinkOpenings memory openings,
        VMState.State memory finalState,
        bytes32[4] memory outputSiblings
    ) internal {
        linkRaw(sender, gameId, openings, VMState.encode(finalState), outputSiblings);
    }

    function linkRaw(
        address sender,
        uint256 gameId,
        Proofs.LinkOpenings memory openings,
        bytes memory finalState,
        bytes32[4] memory outputSiblings
    ) internal {
        vm.prank(sender);
        registry.link(gameId, abi.encode(openings), finalState, outputSiblings);
    }

    /// @dev The defender links the game's node with `slots` and the final state of `run`.
    function linkRun(uint256 gameId, uint32[] memory slots, NodeRuns.Trace memory run) internal {
        Proofs.LinkOpenings memory o = openingsOf(rootsOfGame(gameId), game(gameId).lo, slots);
        bytes32[4] memory sib = NodeRuns.outputSiblings(NodeRuns.finalMemory(run));
        linkAs(claimantOf(gameId), gameId, o, NodeRuns.finalState(run), sib);
    }

    /// @dev A made-up exited final state of `steps` steps whose output region holds `outputRoot` (under the
    ///      output siblings of `like`'s final memory), and those siblings.
    function fabricatedFinal(bytes32 outputRoot, uint64 steps, NodeRuns.Trace memory like)
        internal
        pure
        returns (VMState.State memory s, bytes32[4] memory outputSiblings)
    {
        outputSiblings = NodeRuns.outputSiblings(NodeRuns.finalMemory(like));
        s = NodeRuns.copyState(NodeRuns.finalState(like));
        s.memRoot = _memRootWithOutput(outputRoot, outputSiblings);
        s.step = steps;
        s.exited = true;
        s.exitCode = 0;
    }

    function _memRootWithOutput(bytes32 outputRoot, bytes32[4] memory sib) private pure returns (bytes32 node) {
        node = MerkleTrees.hashPair(outputRoot, sib[0]);
        node = MerkleTrees.hashPair(sib[1], node);
        node = MerkleTrees.hashPair(node, sib[2]);
        node = MerkleTrees.hashPair(node, sib[3]);
    }

    /// @dev The defender links the game's node with its own slots and a made-up final state holding its value.
    function linkFabricated(uint256 gameId, uint64 steps, NodeRuns.Trace memory like) internal {
        uint64 node = game(gameId).lo;
        bytes32[] memory roots = rootsOfGame(gameId);
        (VMState.State memory s, bytes32[4] memory sib) = fabricatedFinal(roots[node + 1], steps, like);
        _linkNode(gameId, roots, node, s, sib);
    }

    function _linkNode(
        uint256 gameId,
        bytes32[] memory roots,
        uint64 node,
        VMState.State memory finalState,
        bytes32[4] memory sib
    ) private {
        Proofs.LinkOpenings memory o = openingsOf(roots, node, inputsOf(node));
        linkAs(claimantOf(gameId), gameId, o, finalState, sib);
    }

    // --- phase 2 ----------------------------------------------------------------------------------------

    /// @dev The hashes of a run's states, 0..steps.
    function hashesOf(NodeRuns.Trace memory t) internal pure returns (bytes32[] memory hashes) {
        hashes = new bytes32[](t.steps + 1);
        for (uint64 s = 0; s <= t.steps; ++s) {
            hashes[s] = VMState.hash(t.states[s]);
        }
    }

    /// @dev The hash at `step` of a run (its final state's from the run's end on).
    function hashAt(bytes32[] memory hashes, uint64 step) internal pure returns (bytes32) {
        return hashes[step < hashes.length ? step : hashes.length - 1];
    }

    function defenderHash(Defender memory d, bytes32[] memory truth, uint64 step) internal pure returns (bytes32) {
        if (d.kind == Phase2.Honest) return hashAt(truth, step);
        if (d.kind == Phase2.OwnRun) return hashAt(d.run, step);
        return step < d.divergence ? hashAt(truth, step) : keccak256(abi.encode("lie", step));
    }

    function phase2Hashes(uint256 gameId, Defender memory d, bytes32[] memory truth)
        internal
        view
        returns (bytes32[] memory hashes)
    {
        InferenceRegistry.Game memory g = game(gameId);
        uint64[] memory steps = registry.points(g.lo, g.hi);
        hashes = new bytes32[](steps.length - 2);
        for (uint256 i = 0; i < hashes.length; ++i) {
            hashes[i] = defenderHash(d, truth, steps[i + 1]);
        }
    }

    /// @dev The honest challenger's phase-2 segment: the first whose end is not the true run's state.
    function honestRunSegment(uint256 gameId, bytes32[] memory hashes, bytes32[] memory truth)
        internal
        view
        returns (uint256)
    {
        InferenceRegistry.Game memory g = game(gameId);
        uint64[] memory steps = registry.points(g.lo, g.hi);
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (hashes[i] != hashAt(truth, steps[i + 1])) return i;
        }
        return hashes.length;
    }

    function bisectRun(uint256 gameId, Defender memory d, bytes32[] memory truth)
        internal
        returns (bytes32[] memory hashes)
    {
        hashes = phase2Hashes(gameId, d, truth);
        vm.prank(claimantOf(gameId));
        registry.bisect(gameId, hashes);
    }

    /// @dev One phase-2 round: the defender bisects as `d`, the challenger answers honestly or by `choices`.
    function playRunRound(
        uint256 gameId,
        Defender memory d,
        bytes32[] memory truth,
        bool honestChallenger,
        uint256 choices
    ) internal returns (uint256) {
        bytes32[] memory hashes = bisectRun(gameId, d, truth);
        uint256 segment;
        if (honestChallenger) {
            segment = honestRunSegment(gameId, hashes, truth);
        } else {
            segment = choices % (hashes.length + 1);
            choices /= hashes.length + 1;
        }
        selectAs(gameId, segment, hashes);
        return choices;
    }

    /// @dev Resolve the last step with the true run's state and step proof, sent by `sender`.
    function resolveRun(address sender, uint256 gameId, NodeRuns.Trace memory truth) internal {
        uint64 lo = game(gameId).lo;
        bytes memory stateData = VMState.encode(NodeRuns.stateAt(truth, lo));
        bytes memory proof = NodeRuns.stepProof(truth, lo);
        vm.prank(sender);
        registry.resolve(gameId, stateData, proof);
    }

    /// @dev Phase 2 to its end, resolved by `resolver` with the true run.
    function playPhase2(
        uint256 gameId,
        Defender memory d,
        NodeRuns.Trace memory truth,
        bool honestChallenger,
        uint256 choices,
        address resolver
    ) internal {
        bytes32[] memory truthHashes = hashesOf(truth);
        while (game(gameId).hi - game(gameId).lo > 1) {
            choices = playRunRound(gameId, d, truthHashes, honestChallenger, choices);
        }
        resolveRun(resolver, gameId, truth);
    }

    function honestDefender() internal pure returns (Defender memory d) {
        d.kind = Phase2.Honest;
    }

    function fabricating(uint64 divergence) internal pure returns (Defender memory d) {
        d.kind = Phase2.Fabricated;
        d.divergence = divergence;
    }

    function ownRun(NodeRuns.Trace memory run) internal pure returns (Defender memory d) {
        d.kind = Phase2.OwnRun;
        d.run = hashesOf(run);
    }

    // --- accounting -------------------------------------------------------------------------------------

    /// @dev What the registry holds for others: open fees, live claims' bonds, what is left of the bonds of
    ///      rejected claims whose games still run, and the bonds of active games.
    function held() internal view returns (uint256 total) {
        for (uint256 id = 1; id <= registry.requestCount(); ++id) {
            InferenceRegistry.Request memory r = registry.getRequest(id);
            if (r.status == InferenceRegistry.RequestStatus.Open) total += r.fee;
        }
        for (uint256 id = 1; id <= registry.claimCount(); ++id) {
            InferenceRegistry.Claim memory c = registry.getClaim(id);
            if (c.status == InferenceRegistry.ClaimStatus.Live) total += CLAIM_BOND;
            if (c.status == InferenceRegistry.ClaimStatus.Rejected && c.openGames > 0) {
                total += CLAIM_BOND - c.refunded;
            }
        }
        for (uint256 id = 1; id <= registry.gameCount(); ++id) {
            if (game(id).status == InferenceRegistry.GameStatus.Active) total += CHALLENGE_BOND;
        }
    }

    /// @dev The contract holds exactly the credits of `actors`, the burned total and what it holds for others.
    function assertBooksBalance(address[] memory actors) internal view {
        uint256 credited;
        for (uint256 i = 0; i < actors.length; ++i) {
            credited += registry.balances(actors[i]);
        }
        assertEq(address(registry).balance, credited + registry.burned() + held(), "credits + burned + held");
    }

    function kept(uint256 bond) internal pure returns (uint256) {
        return bond - bond * BURN_BPS / 10_000;
    }
}
