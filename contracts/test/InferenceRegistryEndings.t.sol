// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "../src/InferenceLayout.sol";
import {IInferenceConsumer, InferenceRegistry, ResultKind} from "../src/InferenceRegistry.sol";
import {Proofs} from "../src/Proofs.sol";
import {VMState} from "../src/VMState.sol";
import {GasBurningConsumer} from "./helpers/GasBurningConsumer.sol";
import {RegistryFixture} from "./helpers/RegistryFixture.sol";
import {SparseMemory} from "./helpers/SparseMemory.sol";

/// @dev Records the last result it was called back with.
contract KindConsumer is IInferenceConsumer {
    uint256 public calls;
    ResultKind public lastKind;
    uint256 public lastOutputLength;

    function onInferenceResult(uint256, ResultKind kind, uint8, bytes calldata output) external {
        calls += 1;
        lastKind = kind;
        lastOutputLength = output.length;
    }
}

/// @notice Issue 17, played as the attackers would: every request ends whatever its program writes (a malformed
///         output region, a length prefix beyond the region, an output above the cap), no claim is committed
///         for a request that does not exist, and a request whose claims can be neither refuted nor finalized
///         ends by the last-resort cancel, never before its bound and never instead of an honest claim.
contract InferenceRegistryEndingsTest is RegistryFixture {
    using SparseMemory for SparseMemory.Memory;

    address internal constant ATTACKER = address(0xA77);
    uint256 internal constant TX_GAS = 21_000;
    uint256 internal constant NONZERO_BYTE_GAS = 16;
    uint256 internal constant ZERO_BYTE_GAS = 4;
    uint256 internal constant FLOOR_TOKEN_GAS = 10; // EIP-7623: a calldata floor of 10 gas a token
    uint256 internal constant NONZERO_BYTE_TOKENS = 4;
    uint256 internal constant FINALIZE_TX_BUDGET = 10_000_000;
    uint256 internal constant ABOVE_CAP_OUTPUT = 1536 * 1024; // the 1.5 MiB output of the issue

    function setUp() public override {
        super.setUp();
        fund(ATTACKER, 100 ether);
    }

    function _requestWithConsumer(uint256 programId, address consumer) internal returns (uint256) {
        deposited[REQUESTER] += FEE;
        vm.prank(REQUESTER);
        return registry.requestInference{value: FEE}(programId, modelId, "", consumer, STEP_LIMIT);
    }

    function _result(uint256 id) internal view returns (InferenceRegistry.Result memory result) {
        bool final_;
        (final_, result) = registry.resultOf(id);
        assertTrue(final_, "the request is final");
    }

    // --- 1. result kinds: every exited state has exactly one provable kind ----------------------------

    /// @dev A program that leaves a nonzero byte after a zero-length output. The claimant of its true final
    ///      state cannot prove an output (the region is not the zero-filled one of any output) but proves it
    ///      malformed; a challenger of the true state loses; the request ends.
    function testFuzz_AMalformedOutputRequestEndsAndItsChallengerLoses(uint256 choices) public {
        truth = Run.Malformed;
        _playTheWriterToItsEnd(choices, ResultKind.MalformedOutput);
    }

    /// @dev A program that writes the length prefix 0xFFFFFFFF, beyond its region.
    function testFuzz_ATooLargeOutputRequestEndsAndItsChallengerLoses(uint256 choices) public {
        truth = Run.TooLarge;
        _playTheWriterToItsEnd(choices, ResultKind.OutputTooLarge);
    }

    function _playTheWriterToItsEnd(uint256 choices, ResultKind kind) internal {
        KindConsumer consumer = new KindConsumer();
        (uint256 programId,) = trueProgram();
        requestId = _requestWithConsumer(programId, address(consumer));
        uint256 claimId = claimAs(CLAIMANT, trueFinalState());
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        play(gameId, CLAIMANT, CHALLENGER, WRITER_STEPS + 1, choices); // the challenger disputes the truth
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.DefenderWon, "the true state holds");

        vm.warp(timestamp() + WINDOW);
        bytes memory finalState = VMState.encode(trueFinalState());
        bytes32[4] memory s = _regionSiblings();
        vm.expectRevert(InferenceRegistry.OutputNotInState.selector);
        registry.finalize(claimId, finalState, "", s); // no output of any length is this region
        vm.expectRevert(InferenceRegistry.OutputNotInState.selector);
        registry.finalize(claimId, finalState, hex"0001", s);
        finalizeTruth(claimId);

        InferenceRegistry.Result memory result = _result(requestId);
        assertTrue(result.kind == kind && result.exitCode == 0, "final, of its kind");
        assertEq(result.outputHash, keccak256(""), "with no output");
        assertTrue(consumer.calls() == 1 && consumer.lastKind() == kind, "the consumer hears the kind");
        assertEq(consumer.lastOutputLength(), 0, "and no bytes");
        uint256 challengerShare = CHALLENGE_BOND - CHALLENGE_BOND * BURN_BPS / 10_000;
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND + challengerShare, "fee, bond and the challenger's bond");
        assertEq(received(CHALLENGER), 0, "the challenger of the truth loses");
        assertEq(registry.getRequest(requestId).liveClaims, 0, "nothing is left live");
    }

    function _regionSiblings() internal view returns (bytes32[4] memory s) {
        s = outputProof(_writtenMemory(truth), OUTPUT_REGION).regionSiblings;
    }

    /// @dev A valid output of 1.5 MiB: finalize's calldata alone would cost 25.2M gas, so it was locked. Now
    ///      it is refused as an output and proven OutputTooLarge by its first leaf in a few hundred thousand gas.
    function test_AValidOutputAboveTheCapEndsAsTooLarge() public {
        SparseMemory.Memory memory m = _memory().withWord(OUTPUT_REGION, uint32(ABOVE_CAP_OUTPUT));
        m = m.withWord(OUTPUT_REGION + 4, 0xDA7A0001); // some of its bytes, far apart
        m = m.withWord(OUTPUT_REGION + uint32(ABOVE_CAP_OUTPUT), 0xDA7A0002);
        VMState.State memory finalState = honestState(STEPS);
        finalState.memRoot = m.root();
        uint256 claimId = claimAs(CLAIMANT, finalState);
        vm.warp(timestamp() + WINDOW);

        bytes memory stateData = VMState.encode(finalState);
        Proofs.OutputProof memory proof = outputProof(m, OUTPUT_REGION);
        bytes memory output = new bytes(ABOVE_CAP_OUTPUT);
        uint256 cap = registry.MAX_OUTPUT_BYTES();
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.OutputAboveCap.selector, ABOVE_CAP_OUTPUT, cap));
        registry.finalize(claimId, stateData, output, proof.regionSiblings);
        uint256 before = gasleft();
        registry.finalizeMalformed(claimId, stateData, proof);
        assertTrue(before - gasleft() < 300_000, "proven by two leaves' worth of hashes");
        assertTrue(_result(requestId).kind == ResultKind.OutputTooLarge, "too large");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "the claimant is paid");
    }

    /// @dev The largest output, with the costliest consumer the registry allows (a full MAX_CALLBACK_GAS,
    ///      receiving the output): the whole transaction stays under 10M gas; one byte more is no output.
    function test_FinalizeAtTheOutputCapFitsTenMillionGas() public {
        InferenceRegistry.Parameters memory p = parameters();
        p.callbackGasLimit = registry.MAX_CALLBACK_GAS();
        registry = new InferenceRegistry(mips, proofs, p);
        exitProgramId = registry.registerProgram(programRoot, EXIT_ENTRY, InferenceRegistry.ProgramKind.WholeRun);
        modelId = registry.registerModel(InferenceLayout.zeroRoot(25), keccak256(""), "empty");
        GasBurningConsumer consumer = new GasBurningConsumer();
        requestId = _requestWithConsumer(exitProgramId, address(consumer));

        bytes memory output = new bytes(registry.MAX_OUTPUT_BYTES());
        for (uint256 i = 0; i < output.length; ++i) {
            output[i] = bytes1(uint8(i % 255 + 1)); // every byte nonzero: the costliest calldata
        }
        VMState.State memory finalState = honestState(STEPS);
        finalState.memRoot = _memRootWithOutput(output);
        uint256 claimId = claimAs(CLAIMANT, finalState);
        vm.warp(timestamp() + WINDOW);
        bytes memory stateData = VMState.encode(finalState);
        bytes32[4] memory s = siblings();

        bytes memory longer = abi.encodePacked(output, hex"01");
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.OutputAboveCap.selector, longer.length, output.length));
        registry.finalize(claimId, stateData, longer, s);

        bytes memory callData = abi.encodeCall(registry.finalize, (claimId, stateData, output, s));
        (uint256 standard, uint256 floor) = _calldataGas(callData);
        uint256 before = gasleft();
        registry.finalize(claimId, stateData, output, s);
        uint256 execution = before - gasleft();
        uint256 total = TX_GAS + standard + execution;
        if (TX_GAS + floor > total) total = TX_GAS + floor;
        assertTrue(_result(requestId).kind == ResultKind.Output, "finalized with its output");
        assertTrue(execution > registry.MAX_CALLBACK_GAS(), "the consumer used its whole callback gas");
        assertTrue(total <= FINALIZE_TX_BUDGET, "the whole finalize transaction fits 10M gas");
    }

    function _calldataGas(bytes memory data) internal pure returns (uint256 standard, uint256 floor) {
        uint256 tokens;
        for (uint256 i = 0; i < data.length; ++i) {
            bool zero = data[i] == 0;
            standard += zero ? ZERO_BYTE_GAS : NONZERO_BYTE_GAS;
            tokens += zero ? 1 : NONZERO_BYTE_TOKENS;
        }
        floor = tokens * FLOOR_TOKEN_GAS;
    }

    function _memRootWithOutput(bytes memory output) internal view returns (bytes32) {
        return InferenceLayout.memoryRootWithOutputRegion(InferenceLayout.regionRoot(output), siblings());
    }

    /// @dev No state proves two kinds: a well-formed output is not malformed, a run at its step limit has no
    ///      output region, and a proof must start from the length leaf and stay under the claimed memory.
    function test_OnlyTheTrueKindCanBeProven() public {
        // an exited run with a well-formed (empty) output
        uint256 exitClaim = claimAs(CLAIMANT, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        bytes memory exitState = VMState.encode(honestState(STEPS));
        Proofs.OutputProof memory proof = outputProof(_memory(), OUTPUT_REGION);
        vm.expectRevert(abi.encodeWithSelector(Proofs.OutputNotMalformed.selector, 0, 0));
        registry.finalizeMalformed(exitClaim, exitState, proof);
        proof.second = leafProof(_memory().proof(OUTPUT_REGION + 4096), 128);
        vm.expectRevert(abi.encodeWithSelector(Proofs.OutputNotMalformed.selector, 0, 128));
        registry.finalizeMalformed(exitClaim, exitState, proof);

        // the malformed run: not from another leaf, not with a made-up leaf, not under other siblings
        truth = Run.Malformed;
        uint256 id = request(malformedProgramId, STEP_LIMIT);
        uint256 claimId = claimFor(CLAIMANT, id, trueFinalState());
        vm.warp(timestamp() + WINDOW);
        bytes memory stateData = VMState.encode(trueFinalState());
        SparseMemory.Memory memory m = _writtenMemory(Run.Malformed);
        proof = outputProof(m, OUTPUT_REGION + MALFORMED_OFFSET);
        Proofs.OutputProof memory wrong = outputProof(m, OUTPUT_REGION + MALFORMED_OFFSET);
        wrong.first.index = 3;
        vm.expectRevert(abi.encodeWithSelector(Proofs.NotTheFirstLeaf.selector, 3));
        registry.finalizeMalformed(claimId, stateData, wrong);
        wrong = outputProof(m, OUTPUT_REGION + MALFORMED_OFFSET);
        wrong.second.leaf = bytes32(uint256(7));
        vm.expectRevert(InferenceRegistry.OutputNotInState.selector);
        registry.finalizeMalformed(claimId, stateData, wrong);
        wrong = outputProof(m, OUTPUT_REGION + MALFORMED_OFFSET);
        wrong.regionSiblings[2] = bytes32(uint256(1));
        vm.expectRevert(InferenceRegistry.OutputNotInState.selector);
        registry.finalizeMalformed(claimId, stateData, wrong);
        wrong = outputProof(m, OUTPUT_REGION + MALFORMED_OFFSET);
        wrong.second.index = InferenceLayout.REGION_LEAVES + 3;
        vm.expectRevert(abi.encodeWithSelector(InferenceLayout.LeafIndexOutOfRegion.selector, wrong.second.index));
        registry.finalizeMalformed(claimId, stateData, wrong);
        registry.finalizeMalformed(claimId, stateData, proof);
        assertTrue(_result(id).kind == ResultKind.MalformedOutput, "malformed");

        // a run at its step limit has no output region to prove anything about
        truth = Run.Loop;
        uint256 loop = request(loopProgramId, LOOP_LIMIT);
        uint256 loopClaim = claimFor(CLAIMANT, loop, trueFinalState());
        vm.warp(timestamp() + WINDOW);
        bytes memory loopState_ = VMState.encode(trueFinalState());
        vm.expectRevert(InferenceRegistry.NotExited.selector);
        registry.finalizeMalformed(loopClaim, loopState_, proof);
        finalizeTruth(loopClaim);
        assertTrue(_result(loop).kind == ResultKind.StepLimitReached, "the step limit");
    }

    // --- 2. no commitment for a request that does not exist -------------------------------------------

    /// @dev The attacker knows the result of a request (it was finalized) and pre-commits to it for the next
    ///      request id, expecting the same program, model and input to be requested again: its commitment would
    ///      predate every worker's and take the fee. Commitments are refused unless the request is open.
    function test_AClaimCannotBeCommittedBeforeItsRequestExists() public {
        uint256 first = claimAs(CLAIMANT, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        finalizeWith(first, honestState(STEPS));
        uint256 next = registry.requestCount() + 1;
        bytes32 known = VMState.hash(honestState(STEPS));

        bytes32 ahead = registry.commitmentOf(next, known, ATTACKER);
        bytes32 late = registry.commitmentOf(requestId, known, ATTACKER);
        vm.prank(ATTACKER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.UnknownRequest.selector, next));
        registry.commitClaim(next, ahead);
        vm.prank(ATTACKER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotOpen.selector, requestId));
        registry.commitClaim(requestId, late);

        vm.roll(blockNumber() + 5);
        uint256 again = request(exitProgramId, STEP_LIMIT); // the same program, model and input
        assertEq(again, next, "the id the attacker aimed at");
        commit(CLAIMANT, again, honestState(STEPS)); // the worker serving it commits first
        vm.roll(blockNumber() + 1);
        commit(ATTACKER, again, honestState(STEPS));
        vm.roll(blockNumber() + 1);
        uint256 attackerClaim = reveal(ATTACKER, again, honestState(STEPS)); // reveals first
        uint256 honest = reveal(CLAIMANT, again, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        finalizeWith(attackerClaim, honestState(STEPS)); // and finalizes first
        registry.settle(honest);
        assertEq(received(ATTACKER), CLAIM_BOND, "the attacker only gets its bond back");
        assertEq(received(CLAIMANT), 2 * (FEE + CLAIM_BOND), "both fees to the worker who committed first");
    }

    // --- 3. the last-resort cancel ---------------------------------------------------------------------

    /// @dev A claim of a final state whose memory nobody knows (it is unchallenged, so unrefuted, and nobody
    ///      can prove its output region, so it cannot be finalized) held the request and both bonds for ever.
    ///      Now the request is cancelled at its bound, not a second before: the fee goes back to the requester
    ///      and the claim's bond to its claimant (nobody proved it wrong).
    function test_ARequestNobodyCanEndIsCancelledAtItsBoundAndEveryBondReturned() public {
        VMState.State memory opaque = honestState(STEPS);
        opaque.memRoot = keccak256("a memory nobody can open");
        uint256 claimId = claimAs(LIAR, opaque);
        uint256 bound = registry.getRequest(requestId).lastClaimAt + WINDOW + 2 * CLOCK + REQUEST_TIMEOUT;
        assertEq(registry.cancellableAt(requestId), bound, "the bound");

        vm.warp(registry.getRequest(requestId).deadline); // past the deadline, the claim still holds it
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotFinalized.selector, requestId));
        registry.settle(claimId);
        vm.warp(bound - 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClaimsStillLive.selector, requestId, 1, bound));
        registry.cancel(requestId);
        vm.warp(bound);
        registry.cancel(requestId);
        assertEq(received(REQUESTER), FEE, "the fee goes back");
        registry.settle(claimId);
        assertTrue(claimStatus(claimId) == InferenceRegistry.ClaimStatus.Released, "released");
        assertEq(received(LIAR), CLAIM_BOND, "with its bond back: nobody proved it wrong");
        assertEq(registry.getRequest(requestId).liveClaims, 0, "nothing live");
        assertEq(address(registry).balance, registry.burned() + _credits(), "nothing held");
    }

    /// @dev A game against the held claim that both sides abandoned: the request may be cancelled at its bound,
    ///      but the claim's bond waits for the game to end; ended by `timeout`, the game decides it as usual.
    function test_ALastResortCancelWaitsForOpenGamesBeforeSettling() public {
        VMState.State memory opaque = honestState(STEPS);
        opaque.memRoot = keccak256("a memory nobody can open");
        uint256 claimId = claimAs(LIAR, opaque);
        uint256 gameId = challengeAs(CHALLENGER, claimId); // nobody moves, nobody ends it
        vm.warp(registry.cancellableAt(requestId));
        registry.cancel(requestId);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GamesStillOpen.selector, claimId, 1));
        registry.settle(claimId);
        vm.prank(CHALLENGER);
        registry.timeout(gameId); // the defender never bisected
        assertTrue(claimStatus(claimId) == InferenceRegistry.ClaimStatus.Rejected, "rejected by its game");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + 2 * MOVE_REFUND, "challenge and timeout refunded");
        assertEq(received(REQUESTER), FEE, "the fee went back");
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClaimNotLive.selector, claimId));
        registry.settle(claimId);
    }

    /// @dev An honest claim is never cancelled by the last resort: however many lies follow it (each pushing
    ///      the bound later) and however long its lying challengers stall, it can be finalized by reveal +
    ///      window + 2 x clock, a whole requestTimeout before any cancel. Once final, nothing cancels it.
    function testFuzz_AnHonestClaimIsFinalizableLongBeforeTheLastResort(uint8 lies) public {
        lies = uint8(bound(lies, 0, 3));
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS));
        uint256 revealedAt = timestamp();
        vm.warp(revealedAt + WINDOW - 1);
        uint256 staller = challengeAs(SECOND_CHALLENGER, honest); // challenges at the last second
        for (uint256 i = 0; i < lies; ++i) {
            VMState.State memory lie = lyingFinalState();
            lie.exitCode = uint8(10 + i);
            claimAs(LIAR, lie); // unchallenged, nobody can finalize them (their memory is the truth's)
        }
        bytes32[] memory hashes = defenderHashes(0, STEPS, STEPS + 1);
        vm.prank(CLAIMANT);
        registry.bisect(staller, hashes); // at once; the staller spends its whole clock
        vm.warp(revealedAt + WINDOW + 2 * CLOCK);
        registry.timeout(staller);
        uint256 finalizableAt = timestamp();
        uint256 bound = registry.cancellableAt(requestId);
        assertTrue(finalizableAt + REQUEST_TIMEOUT <= bound, "finalizable a whole request timeout ahead");
        vm.warp(bound - 1); // even a claimant this late still finalizes before any cancel
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClaimsStillLive.selector, requestId, 1 + lies, bound));
        registry.cancel(requestId);
        finalizeWith(honest, honestState(STEPS));
        vm.warp(bound);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotOpen.selector, requestId));
        registry.cancel(requestId);
        assertEq(received(CLAIMANT) - (CHALLENGE_BOND - CHALLENGE_BOND * BURN_BPS / 10_000), FEE + CLAIM_BOND, "paid");
        assertEq(received(REQUESTER), 0, "no refund of a served request");
    }

    function _credits() internal view returns (uint256 total) {
        address[6] memory actors = [REQUESTER, CLAIMANT, LIAR, CHALLENGER, SECOND_CHALLENGER, ATTACKER];
        for (uint256 i = 0; i < actors.length; ++i) {
            total += registry.balances(actors[i]);
        }
    }
}
