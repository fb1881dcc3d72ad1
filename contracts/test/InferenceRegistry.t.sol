// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer, InferenceRegistry, ResultKind} from "../src/InferenceRegistry.sol";
import {VMState} from "../src/VMState.sol";
import {SparseMemory} from "./helpers/SparseMemory.sol";
import {RegistryFixture} from "./helpers/RegistryFixture.sol";

contract Consumer is IInferenceConsumer {
    uint256 public lastRequest;
    ResultKind public lastKind;
    bytes public lastOutput;

    function onInferenceResult(uint256 requestId, ResultKind kind, uint8, bytes calldata output) external {
        lastRequest = requestId;
        lastKind = kind;
        lastOutput = output;
    }
}

/// @dev Withdraws again from inside the payment it receives.
contract Reentrant {
    InferenceRegistry internal registry;

    constructor(InferenceRegistry registry_) {
        registry = registry_;
    }

    function commit(uint256 requestId, bytes32 commitment) external {
        registry.commitClaim(requestId, commitment);
    }

    function claim(uint256 requestId, bytes calldata state) external payable returns (uint256) {
        return registry.submitClaim{value: msg.value}(requestId, state);
    }

    function withdraw() external {
        registry.withdraw();
    }

    function withdrawTo(address payable to) external {
        registry.withdrawTo(to);
    }

    receive() external payable {
        registry.withdraw();
    }
}

/// @notice The registry's rules, one at a time: claims, games, finalization, settlement, cancellation,
///         parameters and every revert path. Attacks are in InferenceRegistryAttacks.t.sol.
contract InferenceRegistryTest is RegistryFixture {
    using SparseMemory for SparseMemory.Memory;

    // --- claims and finalization -----------------------------------------------------------------

    function test_AnUnchallengedClaimBecomesFinalAfterItsWindow() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        vm.warp(timestamp() + WINDOW - 1);
        bytes memory finalState = VMState.encode(honestState(STEPS));
        bytes32[4] memory s = siblings();
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ChallengeWindowOpen.selector, claimId));
        registry.finalize(claimId, finalState, "", s);
        vm.warp(timestamp() + 1);
        uint256 before = CLAIMANT.balance;
        finalizeWith(claimId, honestState(STEPS));
        assertEq(CLAIMANT.balance - before, FEE + CLAIM_BOND, "paid directly");
        assertEq(registry.balances(CLAIMANT), 0, "nothing left to withdraw");
        (bool final_, InferenceRegistry.Result memory result) = registry.resultOf(requestId);
        assertTrue(final_ && result.kind == ResultKind.Output && result.exitCode == 0, "final result");
        assertEq(result.outputHash, keccak256(""), "the output's hash");
        assertTrue(registry.isFinalOutput(requestId, "") && !registry.isFinalOutput(requestId, "7"), "output check");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "fee and bond");
        assertTrue(claimStatus(claimId) == InferenceRegistry.ClaimStatus.Finalized, "claim final");
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClaimNotLive.selector, claimId));
        registry.finalize(claimId, finalState, "", s);
    }

    function test_FinalizeChecksTheClaimedStateAndOutput() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        bytes memory other = VMState.encode(lyingFinalState());
        bytes memory finalState = VMState.encode(honestState(STEPS));
        bytes32[4] memory s = siblings();
        vm.expectRevert(InferenceRegistry.FinalStateMismatch.selector);
        registry.finalize(claimId, other, "", s);
        vm.expectRevert(InferenceRegistry.OutputNotInState.selector);
        registry.finalize(claimId, finalState, "forged", s);
        finalizeWith(claimId, honestState(STEPS));
    }

    function test_ClaimsMustBeFinal() public {
        VMState.State memory midway = honestState(3);
        commit(CLAIMANT, requestId, midway);
        vm.roll(blockNumber() + 1);
        bytes memory midwayState = VMState.encode(midway);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.StateNotFinal.selector, 3, STEP_LIMIT));
        registry.submitClaim{value: CLAIM_BOND}(requestId, midwayState);

        bytes memory finalState = VMState.encode(honestState(STEPS));
        commit(CLAIMANT, requestId, honestState(STEPS));
        vm.roll(blockNumber() + 1);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPayment.selector, CLAIM_BOND, 1));
        registry.submitClaim{value: 1}(requestId, finalState);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(VMState.InvalidStateLength.selector, 3));
        registry.submitClaim{value: CLAIM_BOND}(requestId, hex"010203");
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.UnknownRequest.selector, 99));
        registry.submitClaim{value: CLAIM_BOND}(99, finalState);
    }

    function test_ARevealNeedsTheCallersCommitmentFromAnEarlierBlock() public {
        VMState.State memory honest = honestState(STEPS);
        bytes memory finalState = VMState.encode(honest);
        bytes32 mine = registry.commitmentOf(requestId, VMState.hash(honest), CLAIMANT);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NoCommitment.selector, mine));
        registry.submitClaim{value: CLAIM_BOND}(requestId, finalState); // never committed

        commit(CLAIMANT, requestId, honest);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NoCommitment.selector, mine));
        registry.submitClaim{value: CLAIM_BOND}(requestId, finalState); // same block

        vm.roll(blockNumber() + 1);
        bytes32 theirs = registry.commitmentOf(requestId, VMState.hash(honest), CHALLENGER);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NoCommitment.selector, theirs));
        registry.submitClaim{value: CLAIM_BOND}(requestId, finalState); // someone else's commitment

        uint256 claimId = reveal(CLAIMANT, requestId, honest);
        assertEq(registry.commitments(mine), 0, "a commitment is used once");
        assertEq(registry.getClaim(claimId).steps, STEPS, "steps from the state");
    }

    function test_SeveralClaimsAreLiveAtOnceAndTheFirstToOutliveItsWindowWins() public {
        uint256 lie = claimAs(LIAR, lyingFinalState());
        vm.warp(timestamp() + 10);
        // two independent honest workers, both committed before either revealed
        commit(CLAIMANT, requestId, honestState(STEPS));
        commit(SECOND_CHALLENGER, requestId, honestState(STEPS));
        vm.roll(blockNumber() + 1);
        uint256 honest = reveal(CLAIMANT, requestId, honestState(STEPS));
        vm.warp(timestamp() + 10);
        vm.roll(blockNumber() + 1);
        uint256 duplicate = reveal(SECOND_CHALLENGER, requestId, honestState(STEPS));
        assertEq(registry.getRequest(requestId).liveClaims, 3, "three live claims");

        uint256 gameId = challengeAs(CHALLENGER, lie);
        play(gameId, LIAR, CHALLENGER, STEPS, 0);
        assertTrue(claimStatus(lie) == InferenceRegistry.ClaimStatus.Rejected, "the lie is rejected");

        vm.warp(timestamp() + WINDOW);
        finalizeWith(honest, honestState(STEPS));
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotOpen.selector, requestId));
        finalizeWith(duplicate, honestState(STEPS));
        registry.settle(duplicate);
        assertTrue(claimStatus(duplicate) == InferenceRegistry.ClaimStatus.Retired, "the duplicate retires");
        assertEq(received(SECOND_CHALLENGER), CLAIM_BOND, "with its bond back");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "fee to the final claim");
        assertEq(registry.getRequest(requestId).liveClaims, 0, "no live claim left");
    }

    function test_SettlingAClaimOfAnotherResult() public {
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS));
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotFinalized.selector, requestId));
        registry.settle(honest);
        vm.warp(timestamp() + WINDOW - 10);
        uint256 lie = claimAs(LIAR, lyingFinalState()); // nobody challenges it
        vm.warp(timestamp() + 10);
        finalizeWith(honest, honestState(STEPS));
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ChallengeWindowOpen.selector, lie));
        registry.settle(lie); // it may still be challenged
        vm.warp(timestamp() + WINDOW);
        uint256 burnedBefore = registry.burned();
        registry.settle(lie);
        assertTrue(claimStatus(lie) == InferenceRegistry.ClaimStatus.Forfeited, "forfeited");
        assertEq(registry.burned() - burnedBefore, CLAIM_BOND, "its whole bond is burned");
        assertEq(received(LIAR), 0, "the liar gets nothing back");
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClaimNotLive.selector, lie));
        registry.settle(lie);
    }

    function test_SettlingWaitsForTheClaimsGames() public {
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS));
        uint256 lie = claimAs(LIAR, lyingFinalState());
        uint256 gameId = challengeAs(CHALLENGER, lie);
        vm.warp(timestamp() + WINDOW);
        finalizeWith(honest, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GamesStillOpen.selector, lie, 1));
        registry.settle(lie);
        vm.warp(timestamp() + CLOCK + 1);
        registry.timeout(gameId); // the liar never bisected
        assertTrue(claimStatus(lie) == InferenceRegistry.ClaimStatus.Rejected, "rejected by its game");
        // two moves: its challenge and the timeout it did not send (a bystander did)
        assertEq(received(CHALLENGER), CHALLENGE_BOND + MOVE_REFUND, "bond back + a refund for its one move");
        assertEq(registry.burned(), CLAIM_BOND - MOVE_REFUND, "the rest of the lie's bond is burned");
    }

    function test_AStepLimitClaimEndsANeverExitingRequest() public {
        uint256 id = request(loopProgramId, LOOP_LIMIT);
        bytes32[4] memory s = siblings();
        VMState.State memory beyond = loopState(LOOP_LIMIT + 2);
        commit(CLAIMANT, id, beyond);
        vm.roll(blockNumber() + 1);
        bytes memory beyondState = VMState.encode(beyond);
        vm.prank(CLAIMANT);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRegistry.StepLimitExceeded.selector, LOOP_LIMIT + 2, LOOP_LIMIT)
        );
        registry.submitClaim{value: CLAIM_BOND}(id, beyondState);

        VMState.State memory atLimit = loopState(LOOP_LIMIT);
        uint256 claimId = claimFor(CLAIMANT, id, atLimit);

        // a challenger who disputes it loses: the claim is the true state at the limit
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        uint256 choices = 0x2F3A;
        while (game(gameId).hi - game(gameId).lo > 1) {
            InferenceRegistry.Game memory g = game(gameId);
            uint64[] memory steps = registry.points(g.lo, g.hi);
            bytes32[] memory hashes = new bytes32[](steps.length - 2);
            for (uint256 i = 0; i < hashes.length; ++i) {
                hashes[i] = VMState.hash(loopState(steps[i + 1]));
            }
            vm.prank(CLAIMANT);
            registry.bisect(gameId, hashes);
            vm.prank(CHALLENGER);
            registry.select(gameId, choices % (steps.length - 1), hashes);
            choices /= steps.length - 1;
        }
        VMState.State memory pre = loopState(game(gameId).lo);
        SparseMemory.Memory memory m = _memory();
        registry.resolve(gameId, VMState.encode(pre), abi.encodePacked(m.proof(pre.pc), m.proof(pre.pc)));
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.DefenderWon, "the step-limit claim holds");
        assertTrue(game(gameId).hi <= LOOP_LIMIT, "never dissected beyond the limit");

        vm.warp(timestamp() + WINDOW);
        bytes memory atLimitState = VMState.encode(atLimit);
        vm.expectRevert(InferenceRegistry.OutputNotInState.selector);
        registry.finalize(claimId, atLimitState, "output", s); // no output without an exit
        registry.finalize(claimId, atLimitState, "", s);
        (bool final_, InferenceRegistry.Result memory result) = registry.resultOf(id);
        assertTrue(final_ && result.kind == ResultKind.StepLimitReached, "final: the step limit was reached");
    }

    function test_StepLimitsAreBounded() public {
        vm.prank(REQUESTER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.InvalidStepLimit.selector, 0, MAX_STEP_LIMIT));
        registry.requestInference(exitProgramId, modelId, "", address(0), 0);
        vm.prank(REQUESTER);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRegistry.InvalidStepLimit.selector, MAX_STEP_LIMIT + 1, MAX_STEP_LIMIT)
        );
        registry.requestInference(exitProgramId, modelId, "", address(0), uint64(MAX_STEP_LIMIT + 1));
    }

    function test_RequestsNeedKnownProgramsModelsAndAContractConsumer() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.UnknownProgram.selector, 9));
        registry.requestInference(9, modelId, "", address(0), 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.UnknownModel.selector, 9));
        registry.requestInference(exitProgramId, 9, "", address(0), 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ConsumerHasNoCode.selector, address(0xBEEF)));
        registry.requestInference(exitProgramId, modelId, "", address(0xBEEF), 1);
        vm.expectRevert(InferenceRegistry.ZeroRoot.selector);
        registry.registerProgram(bytes32(0), 0, InferenceRegistry.ProgramKind.WholeRun);
        vm.expectRevert(InferenceRegistry.ZeroRoot.selector);
        registry.registerModel(bytes32(0), bytes32(0), "");
    }

    // --- cancellation ----------------------------------------------------------------------------

    function test_AnUnservedRequestIsCancelledAfterItsDeadline() public {
        vm.warp(timestamp() + REQUEST_TIMEOUT - 1);
        uint64 deadline = registry.getRequest(requestId).deadline;
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.DeadlineNotReached.selector, requestId, deadline));
        registry.cancel(requestId);
        vm.warp(timestamp() + 1);
        registry.cancel(requestId); // anyone may call it; the fee goes to the requester
        assertEq(received(REQUESTER), FEE, "refunded");
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotOpen.selector, requestId));
        registry.cancel(requestId);
        bytes32 commitment = registry.commitmentOf(requestId, honestHash(STEPS), CLAIMANT);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotOpen.selector, requestId));
        registry.commitClaim(requestId, commitment);
        bytes memory finalState = VMState.encode(honestState(STEPS));
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotOpen.selector, requestId));
        registry.submitClaim{value: CLAIM_BOND}(requestId, finalState);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.UnknownRequest.selector, 77));
        registry.cancel(77);
    }

    function test_ALiveClaimHoldsOffCancellationUntilItIsRejected() public {
        vm.warp(timestamp() + REQUEST_TIMEOUT - 1);
        uint256 lie = claimAs(LIAR, lyingFinalState());
        uint256 gameId = challengeAs(CHALLENGER, lie);
        vm.warp(timestamp() + 1);
        uint256 lastResort = registry.getRequest(requestId).lastClaimAt + WINDOW + 2 * CLOCK + REQUEST_TIMEOUT;
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClaimsStillLive.selector, requestId, 1, lastResort));
        registry.cancel(requestId);
        play(gameId, LIAR, CHALLENGER, 1, 0);
        registry.cancel(requestId);
        assertEq(received(REQUESTER), FEE, "refunded once the lie is gone");
    }

    // --- games -----------------------------------------------------------------------------------

    function testFuzz_HonestChallengerBeatsALyingDefenderWhereverTheLieStarts(uint64 divergence) public {
        divergence = uint64(bound(divergence, 1, STEPS));
        uint256 claimId = claimAs(LIAR, lyingFinalState());
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        play(gameId, LIAR, CHALLENGER, divergence, 0);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.ChallengerWon, "challenger wins");
        assertEq(game(gameId).lo, divergence - 1, "narrowed to the first lying step");
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GameNotActive.selector, gameId));
        registry.resolve(gameId, "", ""); // nothing moves after the resolution
        uint256 share = CLAIM_BOND - CLAIM_BOND * BURN_BPS / 10_000;
        uint256 moves = 1 + game(gameId).rounds; // its challenge and every select (a bystander resolved)
        assertEq(game(gameId).moves, moves, "the challenger's moves are counted");
        assertTrue(moves * MOVE_REFUND < share, "the pool covers the game");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + moves * MOVE_REFUND, "its bond back plus its moves");
        assertEq(registry.burned(), CLAIM_BOND - moves * MOVE_REFUND, "the rest is burned");
        assertTrue(claimStatus(claimId) == InferenceRegistry.ClaimStatus.Rejected, "rejected");
        assertEq(registry.getRequest(requestId).liveClaims, 0, "no live claim");
    }

    function testFuzz_HonestDefenderBeatsALyingChallenger(uint256 choices) public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        play(gameId, CLAIMANT, CHALLENGER, STEPS + 1, choices);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.DefenderWon, "defender wins");
        uint256 share = CHALLENGE_BOND - CHALLENGE_BOND * BURN_BPS / 10_000;
        assertEq(received(CLAIMANT), share, "the challenger's bond, less the burn");
        vm.warp(timestamp() + WINDOW);
        finalizeWith(claimId, honestState(STEPS));
        assertEq(received(CLAIMANT), share + CLAIM_BOND + FEE, "plus its own bond and the fee");
    }

    function test_TimeoutOfTheDefender() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        vm.warp(timestamp() + CLOCK);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClockNotExpired.selector, gameId));
        registry.timeout(gameId);
        vm.warp(timestamp() + 1);
        registry.timeout(gameId);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.ChallengerWon, "silent defender loses");
    }

    function test_AClaimOfZeroStepsCannotStallItsGame() public {
        VMState.State memory lie = honestState(STEPS);
        lie.step = 0;
        uint256 claimId = claimAs(LIAR, lie);
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        vm.prank(LIAR);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPhase.selector, gameId));
        registry.bisect(gameId, new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPhase.selector, gameId));
        registry.resolve(gameId, "", "");
        vm.warp(timestamp() + CLOCK + 1);
        registry.timeout(gameId);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.ChallengerWon, "the liar loses on time");
    }

    function test_TimeoutOfTheChallenger() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        bytes32[] memory hashes = defenderHashes(0, STEPS, STEPS + 1);
        vm.prank(CLAIMANT);
        registry.bisect(gameId, hashes);
        vm.warp(timestamp() + CLOCK + 1);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClockExpired.selector, gameId));
        registry.select(gameId, 0, hashes);
        registry.timeout(gameId);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.DefenderWon, "silent challenger loses");
    }

    function test_FinalizeWaitsForOpenGamesAndChallengesWaitForNothing() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        vm.warp(timestamp() + WINDOW);
        bytes memory finalState = VMState.encode(honestState(STEPS));
        bytes32[4] memory s = siblings();
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GamesStillOpen.selector, claimId, 1));
        registry.finalize(claimId, finalState, "", s);
        vm.prank(SECOND_CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ChallengeWindowClosed.selector, claimId));
        registry.challenge{value: CHALLENGE_BOND}(claimId);
        play(gameId, CLAIMANT, CHALLENGER, STEPS + 1, 3);
        finalizeWith(claimId, honestState(STEPS));
    }

    function test_IllegalMovesRevert() public {
        uint256 claimId = claimAs(LIAR, lyingFinalState());
        vm.prank(LIAR);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.OwnClaim.selector, claimId));
        registry.challenge{value: CHALLENGE_BOND}(claimId);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPayment.selector, CHALLENGE_BOND, 0));
        registry.challenge(claimId);
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.AlreadyChallenged.selector, claimId, CHALLENGER));
        registry.challenge{value: CHALLENGE_BOND}(claimId);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.UnknownClaim.selector, 99));
        registry.challenge{value: CHALLENGE_BOND}(99);
        bytes32[] memory hashes = defenderHashes(0, STEPS, STEPS + 1);

        vm.prank(CHALLENGER); // wrong sender
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NotYourTurn.selector, gameId, CHALLENGER));
        registry.bisect(gameId, hashes);
        vm.prank(CHALLENGER); // out of turn
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NotYourTurn.selector, gameId, CHALLENGER));
        registry.select(gameId, 0, hashes);
        vm.prank(LIAR);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongHashCount.selector, ARITY - 1, 1));
        registry.bisect(gameId, new bytes32[](1));
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPhase.selector, gameId));
        registry.resolve(gameId, "", "");

        vm.prank(LIAR);
        registry.bisect(gameId, hashes);
        vm.prank(LIAR); // twice in a row
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NotYourTurn.selector, gameId, LIAR));
        registry.bisect(gameId, hashes);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.SegmentOutOfRange.selector, ARITY, ARITY));
        registry.select(gameId, ARITY, hashes);
        hashes[0] = bytes32(uint256(1));
        vm.prank(CHALLENGER);
        vm.expectRevert(InferenceRegistry.BisectionMismatch.selector);
        registry.select(gameId, 0, hashes);

        vm.warp(timestamp() + CLOCK + 1);
        registry.timeout(gameId);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GameNotActive.selector, gameId));
        registry.timeout(gameId);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.UnknownGame.selector, 99));
        registry.timeout(99);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.DefenderWon, "the silent challenger lost");
        vm.prank(SECOND_CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ChallengeWindowClosed.selector, claimId));
        registry.challenge{value: CHALLENGE_BOND}(claimId);
    }

    function test_ARejectedClaimTakesNoMoreGames() public {
        uint256 claimId = claimAs(LIAR, lyingFinalState());
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        play(gameId, LIAR, CHALLENGER, STEPS, 0);
        vm.prank(SECOND_CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClaimNotLive.selector, claimId));
        registry.challenge{value: CHALLENGE_BOND}(claimId);
    }

    function test_ResolutionNeedsTheAgreedPreState() public {
        uint256 claimId = claimAs(LIAR, lyingFinalState());
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        while (game(gameId).hi - game(gameId).lo > 1) {
            playRound(gameId, LIAR, CHALLENGER, STEPS, 0);
        }
        uint64 lo = game(gameId).lo;
        bytes memory wrong = VMState.encode(honestState(lo + 1));
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRegistry.PreStateMismatch.selector, honestHash(lo), keccak256(wrong))
        );
        registry.resolve(gameId, wrong, "");
    }

    // --- the consumer ------------------------------------------------------------------------------

    function test_TheConsumerIsCalledBack() public {
        Consumer consumer = new Consumer();
        uint256 id = registry.requestInference(exitProgramId, modelId, "", address(consumer), STEP_LIMIT);
        uint256 claimId = claimFor(CLAIMANT, id, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        finalizeWith(claimId, honestState(STEPS));
        assertEq(consumer.lastRequest(), id, "callback");
        assertTrue(consumer.lastKind() == ResultKind.Output, "an output");
    }

    // --- parameters ---------------------------------------------------------------------------------

    function test_ParametersAreValidatedAtDeployment() public {
        string[10] memory names = [
            "arity",
            "claimBond",
            "challengeBond",
            "burnShareBps",
            "challengeWindow",
            "clockBudget",
            "maxStepLimit",
            "requestTimeout",
            "callbackGasLimit",
            "moveRefund"
        ];
        for (uint256 field = 0; field < names.length; ++field) {
            uint256[] memory bad = _badValues(field);
            for (uint256 i = 0; i < bad.length; ++i) {
                InferenceRegistry.Parameters memory p = _with(parameters(), field, bad[i]);
                vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.InvalidParameter.selector, names[field]));
                new InferenceRegistry(mips, proofs, p);
            }
        }
        InferenceRegistry.Parameters memory widest = parameters();
        widest.arity = registry.MAX_ARITY();
        widest.challengeWindow = registry.MAX_WINDOW();
        widest.clockBudget = registry.MAX_CLOCK();
        widest.maxStepLimit = type(uint64).max;
        widest.burnShareBps = registry.BPS();
        assertEq(new InferenceRegistry(mips, proofs, widest).arity(), 64, "the bounds themselves are allowed");
    }

    function _badValues(uint256 field) private view returns (uint256[] memory values) {
        values = new uint256[](2);
        if (field == 0) (values[0], values[1]) = (1, registry.MAX_ARITY() + 1);
        if (field == 1) (values[0], values[1]) = (0, registry.MAX_CLAIM_BOND() + 1);
        if (field == 2) (values[0], values[1]) = (0, 0);
        if (field == 3) (values[0], values[1]) = (0, registry.BPS() + 1);
        if (field == 4) (values[0], values[1]) = (0, registry.MAX_WINDOW() + 1);
        if (field == 5) (values[0], values[1]) = (0, registry.MAX_CLOCK() + 1);
        if (field == 6) (values[0], values[1]) = (0, uint256(type(uint64).max) + 1);
        if (field == 7) (values[0], values[1]) = (0, registry.MAX_REQUEST_TIMEOUT() + 1);
        if (field == 8) (values[0], values[1]) = (registry.MAX_CALLBACK_GAS() + 1, type(uint256).max);
        if (field == 9) (values[0], values[1]) = (0, CLAIM_BOND + 1);
    }

    function _with(InferenceRegistry.Parameters memory p, uint256 field, uint256 value)
        private
        pure
        returns (InferenceRegistry.Parameters memory)
    {
        if (field == 0) p.arity = value;
        if (field == 1) p.claimBond = value;
        if (field == 2) p.challengeBond = value;
        if (field == 3) p.burnShareBps = value;
        if (field == 4) p.challengeWindow = value;
        if (field == 5) p.clockBudget = value;
        if (field == 6) p.maxStepLimit = value;
        if (field == 7) p.requestTimeout = value;
        if (field == 8) p.callbackGasLimit = value;
        if (field == 9) p.moveRefund = value;
        return p;
    }

    // --- payments -----------------------------------------------------------------------------------

    function test_WithdrawOnceAndNotReentrantly() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        vm.warp(timestamp() + CLOCK + 1);
        vm.prank(CHALLENGER);
        registry.timeout(gameId); // the claimant did not move: the challenger wins
        uint256 before = CHALLENGER.balance;
        vm.prank(CHALLENGER);
        registry.withdraw();
        uint256 expected = CHALLENGE_BOND + 2 * MOVE_REFUND; // its challenge and its timeout
        assertEq(CHALLENGER.balance - before, expected, "paid");
        vm.prank(CHALLENGER);
        vm.expectRevert(InferenceRegistry.NothingToWithdraw.selector);
        registry.withdraw();

        Reentrant attacker = new Reentrant(registry);
        vm.deal(address(attacker), CLAIM_BOND);
        uint256 id = request(exitProgramId, STEP_LIMIT);
        attacker.commit(id, registry.commitmentOf(id, honestHash(STEPS), address(attacker)));
        vm.roll(blockNumber() + 1);
        uint256 attackerClaim = attacker.claim{value: CLAIM_BOND}(id, VMState.encode(honestState(STEPS)));
        vm.warp(timestamp() + WINDOW);
        finalizeWith(attackerClaim, honestState(STEPS));
        vm.expectRevert(InferenceRegistry.TransferFailed.selector);
        attacker.withdraw();
        assertEq(registry.balances(address(attacker)), CLAIM_BOND + FEE, "nothing left the contract");
    }

    function test_AContractThatRejectsEtherWithdrawsToAnotherAddress() public {
        Reentrant wallet = new Reentrant(registry); // its receive() reverts when paid with nothing to withdraw
        vm.deal(address(wallet), CLAIM_BOND);
        wallet.commit(requestId, registry.commitmentOf(requestId, honestHash(STEPS), address(wallet)));
        vm.roll(blockNumber() + 1);
        uint256 claimId = wallet.claim{value: CLAIM_BOND}(requestId, VMState.encode(honestState(STEPS)));
        vm.warp(timestamp() + WINDOW);
        finalizeWith(claimId, honestState(STEPS));
        address payable cold = payable(address(0xC01D));
        wallet.withdrawTo(cold);
        assertEq(cold.balance, CLAIM_BOND + FEE, "paid to the other address");
        assertEq(registry.balances(address(wallet)), 0, "credit used up");
    }
}
