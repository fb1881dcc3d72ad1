// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer, InferenceRegistry, ResultKind} from "../src/InferenceRegistry.sol";
import {VMState} from "../src/VMState.sol";
import {RegistryFixture} from "./helpers/RegistryFixture.sol";
import {SparseMemory} from "./helpers/SparseMemory.sol";

/// @dev Records how much gas its callback received, then burns what it was promised.
contract GasHungryConsumer is IInferenceConsumer {
    uint256 public immutable needs;
    uint256 public gasAtEntry;
    bool public done;

    constructor(uint256 needs_) {
        needs = needs_;
    }

    function onInferenceResult(uint256, ResultKind, uint8, bytes calldata) external {
        gasAtEntry = gasleft();
        uint256 stopAt = gasAtEntry + 30_000 - needs; // keep enough to write `done`
        while (gasleft() > stopAt) {}
        done = true;
    }
}

/// @dev A consumer whose callback always reverts with a large reason.
contract RevertingConsumer is IInferenceConsumer {
    function onInferenceResult(uint256, ResultKind, uint8, bytes calldata) external pure {
        assembly {
            revert(0, 100000)
        }
    }
}

/// @notice Each attack found on the first registry (issue 8) and on the prize-paying one (issue 17: copycat
///         challengers and a liar's sybil), played as the attacker would, asserting that it now fails and that
///         the money ends where it should; then random interleavings of honest and lying parties on runs of
///         every result kind, checked for the protocol's properties.
contract InferenceRegistryAttacksTest is RegistryFixture {
    using SparseMemory for SparseMemory.Memory;

    address internal constant LIAR_ALT = address(0x1A3); // a second account of the liar
    address internal constant COPIER = address(0xC0C0);

    uint256 internal constant SHARE_BPS = 10_000 - BURN_BPS;

    function setUp() public override {
        super.setUp();
        fund(LIAR_ALT, 100 ether);
        fund(COPIER, 100 ether);
    }

    function kept(uint256 bond) internal pure returns (uint256) {
        return bond * SHARE_BPS / 10_000;
    }

    // --- 1. self-challenge --------------------------------------------------------------------

    /// @dev The liar claims a lie, challenges it at once from a second account and plays that game to one
    ///      step in the same block; stalls the honest challenger's game; concedes its own game at the last
    ///      second; and claims the lie again, over and over. The honest claim is final within one window and
    ///      two clocks regardless, and every round costs the liar its bond but its sybil's move refunds.
    function test_Attack1_SelfChallengeNeitherPaysNorBlocks() public {
        uint256 before = LIAR.balance + LIAR_ALT.balance;
        uint256 honestClaim = claimAs(CLAIMANT, honestState(STEPS));
        uint256 revealedAt = timestamp();

        uint256 lies = 3;
        (uint256 sybilRefunds, uint256 honestRefunds) = (0, 0);
        for (uint256 round = 0; round < lies; ++round) {
            VMState.State memory lie = lyingFinalState();
            lie.registers[3] = uint32(round); // a fresh lie each time
            uint256 lieId = claimAs(LIAR, lie);
            vm.prank(LIAR);
            vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.OwnClaim.selector, lieId));
            registry.challenge{value: CHALLENGE_BOND}(lieId);
            uint256 selfGame = challengeAs(LIAR_ALT, lieId);
            while (game(selfGame).hi - game(selfGame).lo > 1) playRound(selfGame, LIAR, LIAR_ALT, 1, 0);
            uint256 honestGame = challengeAs(CHALLENGER, lieId);

            // the liar answers the honest game as slowly as its clock allows
            while (game(honestGame).hi - game(honestGame).lo > 1) {
                vm.warp(timestamp() + CLOCK / 8);
                playRound(honestGame, LIAR, CHALLENGER, 1, 0);
            }
            resolveHonestlyAs(CHALLENGER, honestGame);
            assertTrue(claimStatus(lieId) == InferenceRegistry.ClaimStatus.Rejected, "the lie is rejected");
            // the self-game is still open: what is left of the claim's bond waits for it
            vm.warp(game(selfGame).lastMoveAt + CLOCK + 1);
            vm.prank(LIAR_ALT);
            registry.timeout(selfGame); // the liar's defender concedes to the liar's challenger
            sybilRefunds += game(selfGame).moves * MOVE_REFUND;
            honestRefunds += game(honestGame).moves * MOVE_REFUND;
        }
        vm.warp(revealedAt + WINDOW);
        finalizeWith(honestClaim, honestState(STEPS));
        assertTrue(timestamp() <= revealedAt + WINDOW + 2 * CLOCK, "final within the bound");

        _withdrawAll(LIAR);
        _withdrawAll(LIAR_ALT);
        uint256 lost = before - (LIAR.balance + LIAR_ALT.balance);
        assertEq(lost, lies * CLAIM_BOND - sybilRefunds, "every lie cost its bond but the sybil's moves");
        assertTrue(lost >= lies * (CLAIM_BOND - kept(CLAIM_BOND)), "at least the burned share of each");
        assertEq(received(CHALLENGER), lies * CHALLENGE_BOND + honestRefunds, "the honest challenger is refunded");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "fee to the honest claimant");
    }

    /// @dev The liar stalls every game it can against the honest claim, from many accounts, each challenge
    ///      at the last second of the window and each using its whole clock: the honest claim is still final
    ///      by reveal + window + 2 x clock, and every lying challenger pays.
    function testFuzz_Attack1_LyingChallengersDelayAnHonestClaimAtMostWindowPlusTwoClocks(uint8 count) public {
        count = uint8(bound(count, 1, 6));
        uint256 honestClaim = claimAs(CLAIMANT, honestState(STEPS));
        uint256 revealedAt = timestamp();
        vm.warp(revealedAt + WINDOW - 1);
        uint256[] memory gameIds = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            address liar = address(uint160(0xBAD000 + i));
            fund(liar, CHALLENGE_BOND);
            gameIds[i] = challengeAs(liar, honestClaim);
        }
        // the honest defender answers at once; each liar waits its whole clock, then gives up
        for (uint256 i = 0; i < count; ++i) {
            bytes32[] memory hashes = defenderHashes(0, STEPS, STEPS + 1);
            vm.prank(CLAIMANT);
            registry.bisect(gameIds[i], hashes);
        }
        vm.warp(timestamp() + CLOCK + 1);
        for (uint256 i = 0; i < count; ++i) {
            registry.timeout(gameIds[i]);
        }
        finalizeWith(honestClaim, honestState(STEPS));
        assertTrue(timestamp() <= revealedAt + WINDOW + 2 * CLOCK, "final within the bound");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND + count * kept(CHALLENGE_BOND), "paid by the liars");
    }

    // --- 2. front-running a claim ----------------------------------------------------------------

    /// @dev The copier reads the honest result from the pending reveal, commits in that block, reveals right
    ///      after, and finalizes its copy first. The fee still goes to the honest claimant, who committed
    ///      first; the copier only gets its bond back. Replaying the honest commitment gains nothing either.
    function test_Attack2_ACopiedClaimEarnsNothing() public {
        VMState.State memory honest = honestState(STEPS);
        bytes32 honestCommitment = registry.commitmentOf(requestId, VMState.hash(honest), CLAIMANT);
        vm.prank(CLAIMANT);
        registry.commitClaim(requestId, honestCommitment);
        vm.roll(blockNumber() + 1);

        // the honest reveal sits in the mempool for this block: the copier commits, and replays the commitment
        vm.prank(COPIER);
        registry.commitClaim(requestId, registry.commitmentOf(requestId, VMState.hash(honest), COPIER));
        vm.prank(COPIER);
        registry.commitClaim(requestId, honestCommitment);
        vm.roll(blockNumber() + 1);
        uint256 copy = reveal(COPIER, requestId, honest); // ahead of the honest reveal, in the same block
        uint256 honestClaim = reveal(CLAIMANT, requestId, honest);
        (uint64 leadClaim,) = registry.leadOf(keccak256(abi.encode(requestId, VMState.hash(honest))));
        assertEq(leadClaim, honestClaim, "the earliest commitment leads");

        vm.warp(timestamp() + WINDOW);
        finalizeWith(copy, honest); // the copier finalizes its own claim first
        registry.settle(honestClaim);
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "the fee goes to the honest claimant");
        assertEq(received(COPIER), CLAIM_BOND, "the copier only gets its bond back");
        assertTrue(claimStatus(honestClaim) == InferenceRegistry.ClaimStatus.Retired, "retired with its bond");
    }

    /// @dev Someone who computed the result first throws its own claim away (its sybil wins a game against
    ///      it) to lock the result out. Honest workers who commit later still claim and finalize it.
    function test_Attack2_AThrownClaimDoesNotLockTheResultOut() public {
        uint256 thrown = claimAs(LIAR, honestState(STEPS));
        uint256 sybilGame = challengeAs(LIAR_ALT, thrown);
        vm.warp(timestamp() + CLOCK + 1);
        registry.timeout(sybilGame); // the thrower never defends
        assertTrue(claimStatus(thrown) == InferenceRegistry.ClaimStatus.Rejected, "thrown");
        uint256 honestClaim = claimAs(CLAIMANT, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        finalizeWith(honestClaim, honestState(STEPS));
        assertTrue(isFinal(requestId), "the true result is final");
        assertEq(received(CLAIMANT), CLAIM_BOND, "the honest claimant's bond is back");
    }

    // --- 3. copycat challengers and a liar's sybil (issue 17) ---------------------------------------
    // A challenger who proves a claim wrong is refunded `moveRefund` per move it made, from the claim's bond;
    // the rest of the bond is burned. There is no prize to race for: whoever front-runs or copies the honest
    // challenger, and however a liar routes its games, each challenger gets its own bond and moves back.

    /// @dev The copycat front-runs the honest challenge (its game is older), copies every select right after
    ///      the honest one, and resolves first.
    function test_Attack3_ACopycatChallengerEarnsOnlyItsOwnMoves() public {
        uint256 lieId = claimAs(LIAR, lyingFinalState());
        uint256 copy = challengeAs(COPIER, lieId);
        uint256 honestGame = challengeAs(CHALLENGER, lieId);
        while (game(honestGame).hi - game(honestGame).lo > 1) {
            playRound(honestGame, LIAR, CHALLENGER, 5, 0);
            playRound(copy, LIAR, COPIER, 5, 0); // the same lie answered by copying the honest select
        }
        resolveHonestlyAs(COPIER, copy); // the copier resolves first
        resolveHonestlyAs(CHALLENGER, honestGame);
        uint256 moves = game(honestGame).moves;
        assertEq(game(copy).moves, moves, "as many moves each");
        assertEq(received(COPIER), CHALLENGE_BOND + moves * MOVE_REFUND, "the copier: its bond and its moves");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + moves * MOVE_REFUND, "the honest challenger likewise");
        assertEq(registry.burned(), CLAIM_BOND - 2 * moves * MOVE_REFUND, "the rest of the lie's bond is burned");
    }

    /// @dev The copycat front-runs the honest challenge; the caught liar answers neither game; both end by
    ///      timeout in round 0. (The prize rule ranked the older game first: the copy took half the bond.)
    function test_Attack3_ACopycatThatFrontRunsTheChallengeOfASilentLiarEarnsOnlyItsMoves() public {
        uint256 lieId = claimAs(LIAR, lyingFinalState());
        uint256 copy = challengeAs(COPIER, lieId); // front-runs the honest challenge it saw in the mempool
        uint256 honestGame = challengeAs(CHALLENGER, lieId);
        vm.warp(timestamp() + CLOCK + 1);
        vm.prank(COPIER);
        registry.timeout(copy); // first
        vm.prank(CHALLENGER);
        registry.timeout(honestGame);
        assertEq(game(copy).rounds + game(honestGame).rounds, 0, "round 0");
        assertEq(received(COPIER), CHALLENGE_BOND + 2 * MOVE_REFUND, "the copier: challenge + timeout, no prize");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + 2 * MOVE_REFUND, "the honest challenger is refunded");
        assertEq(received(LIAR), 0, "the liar gets nothing back");
        assertEq(registry.burned(), CLAIM_BOND - 4 * MOVE_REFUND, "the rest of the lie's bond is burned");
    }

    /// @dev The copycat plays its own game as deep as the honest one and front-runs only the honest
    ///      challenger's last select (so its last move is earlier on the same round: the prize rule's tie-break
    ///      went to it). Then the liar goes silent in both games.
    function test_Attack3_FrontRunningTheLastSelectEarnsOnlyTheCopiersMoves() public {
        uint256 lieId = claimAs(LIAR, lyingFinalState());
        uint256 honestGame = challengeAs(CHALLENGER, lieId);
        uint256 copy = challengeAs(COPIER, lieId);
        while (game(honestGame).hi - game(honestGame).lo > 1) {
            InferenceRegistry.Game memory g = game(honestGame);
            bytes32[] memory hashes = defenderHashes(g.lo, g.hi, 5);
            vm.prank(LIAR);
            registry.bisect(honestGame, hashes);
            vm.prank(LIAR);
            registry.bisect(copy, hashes);
            uint256 segment = firstDisputed(g.lo, g.hi, hashes);
            bool last = _widthAfter(g, segment) <= 1;
            if (last) {
                vm.prank(COPIER); // seen in the mempool, sent ahead with a higher tip
                registry.select(copy, segment, hashes);
            }
            vm.prank(CHALLENGER);
            registry.select(honestGame, segment, hashes);
            if (!last) {
                vm.prank(COPIER);
                registry.select(copy, segment, hashes);
            }
        }
        vm.warp(timestamp() + CLOCK + 1); // the liar never proves its step
        vm.prank(COPIER);
        registry.timeout(copy);
        vm.prank(CHALLENGER);
        registry.timeout(honestGame);
        uint256 moves = game(honestGame).moves;
        assertEq(game(copy).rounds, game(honestGame).rounds, "equally deep");
        assertEq(received(COPIER), CHALLENGE_BOND + moves * MOVE_REFUND, "the copier: its own moves");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + moves * MOVE_REFUND, "the honest challenger: its own moves");
        assertEq(registry.burned(), CLAIM_BOND - 2 * moves * MOVE_REFUND, "the rest is burned");
    }

    function _widthAfter(InferenceRegistry.Game memory g, uint256 segment) private view returns (uint64) {
        uint64[] memory steps = registry.points(g.lo, g.hi);
        return steps[segment + 1] - steps[segment];
    }

    /// @dev The liar routes the unburned half of its bond to its own sybil challenger by playing that game
    ///      deeper than the honest one (which it leaves to time out). The sybil earns its own moves' refunds,
    ///      about what they cost in gas: the liar loses its bond but those.
    function test_Attack3_ALiarCannotRouteItsBondToItsSybilByPlayingItDeeper() public {
        uint256 before = LIAR.balance + LIAR_ALT.balance;
        uint256 lieId = claimAs(LIAR, lyingFinalState());
        uint256 honestGame = challengeAs(CHALLENGER, lieId);
        uint256 sybilGame = challengeAs(LIAR_ALT, lieId);
        while (game(sybilGame).hi - game(sybilGame).lo > 1) playRound(sybilGame, LIAR, LIAR_ALT, 1, 0);
        resolveHonestlyAs(LIAR_ALT, sybilGame); // the deepest game, ended first
        vm.warp(timestamp() + CLOCK + 1);
        vm.prank(CHALLENGER);
        registry.timeout(honestGame); // the liar never answered the honest challenger
        uint256 sybilMoves = game(sybilGame).moves;
        assertEq(sybilMoves, 2 + game(sybilGame).rounds, "challenge, every select, resolve");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + 2 * MOVE_REFUND, "the honest challenger is refunded");
        _withdrawAll(LIAR);
        _withdrawAll(LIAR_ALT);
        uint256 lost = before - (LIAR.balance + LIAR_ALT.balance);
        assertEq(lost, CLAIM_BOND - sybilMoves * MOVE_REFUND, "the liar's side gets back only the sybil's moves");
        assertTrue(lost > CLAIM_BOND - kept(CLAIM_BOND), "more than the burned share is lost");
        assertEq(registry.burned(), CLAIM_BOND - (sybilMoves + 2) * MOVE_REFUND, "the rest is burned");
    }

    /// @dev Sybils that drain the refund pool before the honest game ends: the pool (the claim's bond less the
    ///      burned share) is all the challengers of one claim can be refunded, so the liar still loses at
    ///      least the burned share, and the honest challenger at least gets its bond back.
    function test_Attack3_TheRefundPoolBoundsWhatAllChallengersOfALieGet() public {
        uint256 lieId = claimAs(LIAR, lyingFinalState());
        uint256 honestGame = challengeAs(CHALLENGER, lieId);
        uint256 pool = kept(CLAIM_BOND);
        uint256 gameMoves = 4; // challenge, two selects (23 steps at k = 4), resolve
        uint256 sybils = pool / (gameMoves * MOVE_REFUND) + 1; // one game more than the pool pays for
        uint256[] memory gameIds = new uint256[](sybils);
        // every game opens while the lie is live
        for (uint256 i = 0; i < sybils; ++i) {
            address sybil = address(uint160(0x5B1000 + i));
            fund(sybil, CHALLENGE_BOND);
            gameIds[i] = challengeAs(sybil, lieId);
        }
        for (uint256 i = 0; i < sybils; ++i) {
            address sybil = game(gameIds[i]).challenger;
            while (game(gameIds[i]).hi - game(gameIds[i]).lo > 1) playRound(gameIds[i], LIAR, sybil, 1, 0);
            resolveHonestlyAs(sybil, gameIds[i]);
            assertEq(game(gameIds[i]).moves, gameMoves, "moves of a sybil game");
        }
        vm.warp(timestamp() + CLOCK + 1);
        vm.prank(CHALLENGER);
        registry.timeout(honestGame);
        assertEq(registry.getClaim(lieId).refunded, pool, "the pool is used up");
        assertEq(registry.burned(), CLAIM_BOND - pool, "exactly the burned share is burned");
        assertTrue(received(CHALLENGER) >= CHALLENGE_BOND, "the honest challenger has its bond back");
    }

    // --- 4. requests without an end ----------------------------------------------------------------

    /// @dev A request for a program that never exits ends by its step limit; an absurd step count is
    ///      refused outright; a request nobody serves is refunded after its deadline.
    function test_Attack4_EveryRequestEnds() public {
        uint256 loop = request(loopProgramId, LOOP_LIMIT);
        VMState.State memory absurd = loopState(LOOP_LIMIT);
        absurd.step = type(uint64).max;
        absurd.exited = true;
        commit(LIAR, loop, absurd);
        vm.roll(blockNumber() + 1);
        bytes32[4] memory s = siblings();
        bytes memory absurdState = VMState.encode(absurd);
        vm.prank(LIAR);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRegistry.StepLimitExceeded.selector, type(uint64).max, LOOP_LIMIT)
        );
        registry.submitClaim{value: CLAIM_BOND}(loop, absurdState);

        uint256 claimId = claimFor(CLAIMANT, loop, loopState(LOOP_LIMIT));
        vm.warp(timestamp() + WINDOW);
        registry.finalize(claimId, VMState.encode(loopState(LOOP_LIMIT)), "", s);
        (bool final_, InferenceRegistry.Result memory result) = registry.resultOf(loop);
        assertTrue(final_ && result.kind == ResultKind.StepLimitReached, "ended by its step limit");

        uint256 unserved = request(exitProgramId, STEP_LIMIT);
        vm.warp(timestamp() + REQUEST_TIMEOUT);
        uint256 before = received(REQUESTER);
        registry.cancel(unserved);
        assertEq(received(REQUESTER) - before, FEE, "the fee comes back");
    }

    /// @dev A liar claims the never-exiting program exited early; the honest challenger computes no state
    ///      beyond the step limit to beat it.
    function test_Attack4_AFakeExitOfANeverExitingProgramLoses() public {
        uint256 loop = request(loopProgramId, LOOP_LIMIT);
        VMState.State memory fake = loopState(20);
        fake.exited = true;
        uint256 lieId = claimFor(LIAR, loop, fake);
        uint256 gameId = challengeAs(CHALLENGER, lieId);
        while (game(gameId).hi - game(gameId).lo > 1) {
            InferenceRegistry.Game memory g = game(gameId);
            uint64[] memory steps = registry.points(g.lo, g.hi);
            bytes32[] memory hashes = new bytes32[](steps.length - 2);
            for (uint256 i = 0; i < hashes.length; ++i) {
                hashes[i] = VMState.hash(loopState(steps[i + 1]));
            }
            vm.prank(LIAR);
            registry.bisect(gameId, hashes);
            vm.prank(CHALLENGER);
            registry.select(gameId, hashes.length, hashes); // every interior hash is true: the last step lies
            assertTrue(game(gameId).hi <= LOOP_LIMIT, "within the limit");
        }
        VMState.State memory pre = loopState(game(gameId).lo);
        registry.resolve(gameId, VMState.encode(pre), abi.encodePacked(_proofAt(pre.pc), _proofAt(pre.pc)));
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.ChallengerWon, "the fake exit loses");
    }

    function _proofAt(uint32 addr) private view returns (bytes memory) {
        return _memory().proof(addr);
    }

    // --- 5 and 6. the consumer ----------------------------------------------------------------------

    /// @dev A consumer without code cannot be named, and one whose code is gone later cannot block
    ///      `finalize`: the claimant is paid and the failure is logged.
    function test_Attack5_AConsumerWithoutCodeCannotBlockFinalize() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ConsumerHasNoCode.selector, LIAR));
        registry.requestInference(exitProgramId, modelId, "", LIAR, STEP_LIMIT);

        RevertingConsumer consumer = new RevertingConsumer();
        uint256 id = registry.requestInference{value: FEE}(exitProgramId, modelId, "", address(consumer), STEP_LIMIT);
        uint256 other = registry.requestInference{value: FEE}(exitProgramId, modelId, "", address(consumer), STEP_LIMIT);
        uint256 claimId = claimFor(CLAIMANT, id, honestState(STEPS));
        commit(CLAIMANT, other, honestState(STEPS));
        vm.roll(blockNumber() + 1);
        uint256 otherClaim = reveal(CLAIMANT, other, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        vm.expectEmit(true, true, true, true, address(registry));
        emit InferenceRegistry.CallbackFailed(id, address(consumer));
        finalizeWith(claimId, honestState(STEPS)); // the callback reverts with 100 kB of data
        vm.etch(address(consumer), ""); // its code is gone
        vm.expectEmit(true, true, true, true, address(registry));
        emit InferenceRegistry.CallbackFailed(other, address(consumer));
        finalizeWith(otherClaim, honestState(STEPS));
        assertEq(received(CLAIMANT), 2 * (FEE + CLAIM_BOND), "paid for both");
    }

    /// @dev The caller of `finalize` sends just enough gas for everything but the callback: it either
    ///      reverts, or the consumer gets its full `callbackGasLimit`.
    function testFuzz_Attack6_FinalizeNeverStarvesTheCallback(uint256 gasSent) public {
        gasSent = bound(gasSent, 60_000, 400_000);
        GasHungryConsumer consumer = new GasHungryConsumer(CALLBACK_GAS);
        uint256 id = registry.requestInference{value: FEE}(exitProgramId, modelId, "", address(consumer), STEP_LIMIT);
        uint256 claimId = claimFor(CLAIMANT, id, honestState(STEPS));
        vm.warp(timestamp() + WINDOW);
        bytes memory finalState = VMState.encode(honestState(STEPS));
        try registry.finalize{gas: gasSent}(claimId, finalState, "", siblings()) {
            assertTrue(consumer.done(), "the consumer ran to its end");
            assertTrue(consumer.gasAtEntry() + 1_000 >= CALLBACK_GAS, "with its full gas");
        } catch {
            assertTrue(!isFinal(id), "no result without the callback");
            assertTrue(claimStatus(claimId) == InferenceRegistry.ClaimStatus.Live, "the claim waits");
        }
    }

    // --- random interleavings ------------------------------------------------------------------------

    struct Player {
        uint256 gameId;
        bool honestDefender;
        bool honestChallenger;
        uint64 divergence; // where a lying defender's hashes start to lie
        uint256 choices; // a lying challenger's segments
        uint256 pace; // a liar's seconds per move (past its clock: it gives up)
    }

    Player[] internal players;
    uint256 internal deposits;

    /// @dev Liars (claims lying from a random step, with random step counts) and lying challengers from
    ///      several accounts, random paces, self-challenges; an honest claimant and an honest challenger who
    ///      disputes every lie; on a run of any result kind (an output, the step limit, a malformed output, an
    ///      output too large). Every game is played to its end in chain-time order, and after every move the
    ///      contract holds exactly the credits, the burned total, the open fees, the live claims' bonds, what
    ///      is left of rejected claims' bonds while their games run, and the active games' bonds. The true
    ///      result is final within window + 2 x clock of the honest reveal, with its kind; the honest
    ///      challenger gets back its bonds and a refund per move; the liars lose at least the burned share of
    ///      every lie; and the ether adds up: paid + credited + burned == deposits.
    function testFuzz_InterleavingsEndWithTheTruthAndTheBooksBalance(uint256 seed) public {
        truth = Run(seed % 4);
        seed = _next(seed);
        deposits = FEE; // the fixture's request (left open unless it is the one played)
        if (truth != Run.Exit) {
            (uint256 programId, uint64 stepLimit) = trueProgram();
            requestId = request(programId, stepLimit);
            deposits += FEE;
        }
        (, uint64 limit) = trueProgram();
        uint256 start = timestamp();
        uint256 lieCount = seed % 4;
        uint256[] memory lies = new uint256[](lieCount);
        for (uint256 i = 0; i < lieCount; ++i) {
            seed = _next(seed);
            vm.warp(start + seed % (WINDOW / 2));
            VMState.State memory lie = trueFinalState();
            lie.step = uint64(bound(seed >> 8, 1, trueSteps() + 5 > limit ? limit : trueSteps() + 5));
            lie.exitCode = uint8(1 + i);
            lie.exited = true;
            lies[i] = _claim(i % 2 == 0 ? LIAR : LIAR_ALT, lie);
            // the honest challenger disputes every lie; sometimes the liar's other account does so first
            if (seed % 3 == 0) _challenge(lies[i], i % 2 == 0 ? LIAR_ALT : LIAR, false, false, seed);
            _challenge(lies[i], CHALLENGER, false, true, seed >> 16);
        }
        seed = _next(seed);
        vm.warp(start + seed % (WINDOW / 2));
        uint256 honestClaim = _claim(CLAIMANT, trueFinalState());
        uint256 revealedAt = timestamp();
        uint256 liarChallenges = (seed >> 8) % 3;
        for (uint256 i = 0; i < liarChallenges; ++i) {
            seed = _next(seed);
            vm.warp(revealedAt + seed % WINDOW);
            _challenge(honestClaim, i % 2 == 0 ? LIAR : LIAR_ALT, true, false, seed);
        }

        _playAllGames();
        if (timestamp() < revealedAt + WINDOW) vm.warp(revealedAt + WINDOW);
        finalizeTruth(honestClaim);
        _assertBooksBalance();
        assertTrue(timestamp() <= revealedAt + WINDOW + 2 * CLOCK, "final within the bound");
        (, InferenceRegistry.Result memory result) = registry.resultOf(requestId);
        assertTrue(result.kind == trueKind() && result.exitCode == 0, "the true result, of its kind");
        uint256 lieRefunds;
        for (uint256 i = 0; i < lieCount; ++i) {
            assertTrue(claimStatus(lies[i]) == InferenceRegistry.ClaimStatus.Rejected, "every lie is rejected");
            lieRefunds += registry.getClaim(lies[i]).refunded;
        }

        address[5] memory actors = [CLAIMANT, CHALLENGER, LIAR, LIAR_ALT, REQUESTER];
        uint256 returned = 0;
        for (uint256 i = 0; i < actors.length; ++i) {
            returned += received(actors[i]);
        }
        assertEq(returned + registry.burned() + _held(), deposits, "paid + credited + burned + held == deposits");
        assertTrue(received(CLAIMANT) >= FEE + CLAIM_BOND, "the honest claimant is paid in full");
        (uint256 honestRefunds, uint256 otherRefunds) = _refundsOfChallengerWonGames();
        assertEq(honestRefunds + otherRefunds, lieRefunds, "refunds are exactly the challengers' moves");
        assertEq(received(CHALLENGER), lieCount * CHALLENGE_BOND + honestRefunds, "the honest challenger is refunded");
        uint256 liarsPaidIn = (lieCount * CLAIM_BOND) + _liarChallengeBonds();
        assertTrue(
            received(LIAR) + received(LIAR_ALT) + lieCount * (CLAIM_BOND - kept(CLAIM_BOND)) <= liarsPaidIn,
            "every lie costs at least its burned share"
        );
    }

    /// @dev The refunds paid to the honest challenger and to everybody else for the games they won: each
    ///      its moves times moveRefund (the pool of a lie here is never used up).
    function _refundsOfChallengerWonGames() private view returns (uint256 honest, uint256 others) {
        for (uint256 id = 1; id <= registry.gameCount(); ++id) {
            InferenceRegistry.Game memory g = game(id);
            if (g.status != InferenceRegistry.GameStatus.ChallengerWon) continue;
            if (g.challenger == CHALLENGER) honest += g.moves * MOVE_REFUND;
            else others += g.moves * MOVE_REFUND;
        }
    }

    /// @dev What the registry holds for others: open fees, live claims' bonds, what is left of the bonds of
    ///      rejected claims whose games still run, and the bonds of active games.
    function _held() private view returns (uint256 total) {
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

    /// @dev The contract holds exactly the credits, the burned total and what it holds for others.
    function _assertBooksBalance() private view {
        address[5] memory actors = [CLAIMANT, CHALLENGER, LIAR, LIAR_ALT, REQUESTER];
        uint256 credited;
        for (uint256 i = 0; i < actors.length; ++i) {
            credited += registry.balances(actors[i]);
        }
        assertEq(address(registry).balance, credited + registry.burned() + _held(), "credits + burned + held");
    }

    function _next(uint256 seed) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed)));
    }

    function _claim(address claimant, VMState.State memory finalState) private returns (uint256) {
        deposits += CLAIM_BOND;
        return claimAs(claimant, finalState);
    }

    function _challenge(uint256 claimId, address challenger, bool honestDefender, bool honestChallenger, uint256 seed)
        private
    {
        deposits += CHALLENGE_BOND;
        uint256 gameId = challengeAs(challenger, claimId);
        InferenceRegistry.Claim memory claim = registry.getClaim(claimId);
        players.push(
            Player({
                gameId: gameId,
                honestDefender: honestDefender,
                honestChallenger: honestChallenger,
                divergence: uint64(bound(seed >> 32, 1, claim.steps == 0 ? 1 : claim.steps)),
                choices: seed >> 64,
                pace: (seed >> 128) % (CLOCK / 4)
            })
        );
    }

    function _liarChallengeBonds() private view returns (uint256 total) {
        for (uint256 i = 0; i < players.length; ++i) {
            if (!players[i].honestChallenger) total += CHALLENGE_BOND;
        }
    }

    /// @dev Repeatedly make the earliest due move of any game until every game has ended.
    function _playAllGames() private {
        while (true) {
            (uint256 next, uint256 due) = (type(uint256).max, type(uint256).max);
            for (uint256 i = 0; i < players.length; ++i) {
                InferenceRegistry.Game memory g = game(players[i].gameId);
                if (g.status != InferenceRegistry.GameStatus.Active) continue;
                uint256 at = g.lastMoveAt + _delay(players[i], g);
                if (at < due) (next, due) = (i, at);
            }
            if (next == type(uint256).max) return;
            if (due > timestamp()) vm.warp(due);
            _move(players[next]);
            _assertBooksBalance();
        }
    }

    /// @dev Seconds the side to move waits: honest sides answer in a second, liars at their pace. With one
    ///      step left anyone may prove it, so an honest side on either end does so at once.
    function _delay(Player memory p, InferenceRegistry.Game memory g) private pure returns (uint256) {
        bool defenderToMove = g.turn == InferenceRegistry.Turn.Defender;
        bool honest = defenderToMove ? p.honestDefender : p.honestChallenger;
        if (defenderToMove && g.hi - g.lo == 1) honest = p.honestDefender || p.honestChallenger;
        if (honest) return 1;
        uint256 clock = defenderToMove ? g.defenderClock : g.challengerClock;
        return p.pace <= clock ? p.pace : clock + 1;
    }

    function _move(Player storage p) private {
        InferenceRegistry.Game memory g = game(p.gameId);
        bool defenderToMove = g.turn == InferenceRegistry.Turn.Defender;
        uint256 clock = defenderToMove ? g.defenderClock : g.challengerClock;
        bool provable = g.hi - g.lo == 1 && g.loHash == trueHash(g.lo);
        if (timestamp() - g.lastMoveAt > clock || (defenderToMove && g.hi - g.lo <= 1 && !provable)) {
            // out of time, or a step nobody can prove (zero width, or a made-up agreed state): wait it out
            if (timestamp() - g.lastMoveAt <= clock) vm.warp(g.lastMoveAt + clock + 1);
            vm.prank(defenderToMove ? g.challenger : registry.getClaim(g.claimId).claimant); // the side to win
            registry.timeout(p.gameId);
            return;
        }
        if (defenderToMove && g.hi - g.lo == 1) {
            resolveHonestlyAs(p.honestChallenger ? g.challenger : address(0), p.gameId); // its move, if honest
            return;
        }
        bytes32[] memory hashes = defenderHashes(g.lo, g.hi, p.honestDefender ? type(uint64).max : p.divergence);
        if (defenderToMove) {
            vm.prank(registry.getClaim(g.claimId).claimant);
            registry.bisect(p.gameId, hashes);
        } else {
            uint256 segment = p.honestChallenger ? firstDisputed(g.lo, g.hi, hashes) : p.choices % (hashes.length + 1);
            p.choices /= hashes.length + 1;
            vm.prank(g.challenger);
            registry.select(p.gameId, segment, hashes);
        }
    }

    function _withdrawAll(address account) private {
        if (received(account) == 0) return;
        vm.prank(account);
        registry.withdraw();
    }
}
