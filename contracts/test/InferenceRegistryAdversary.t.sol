// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "../src/InferenceLayout.sol";
import {IInferenceConsumer, InferenceRegistry, ResultKind} from "../src/InferenceRegistry.sol";
import {VMState} from "../src/VMState.sol";
import {SparseMemory} from "./helpers/SparseMemory.sol";
import {RegistryFixture} from "./helpers/RegistryFixture.sol";

/// @dev Records the gas it was given.
contract GasMeter is IInferenceConsumer {
    uint256 public gasAtEntry;

    function onInferenceResult(uint256, ResultKind, uint8, bytes calldata) external {
        gasAtEntry = gasleft();
    }
}

/// @dev A consumer that does its worst in the callback.
contract HostileConsumer is IInferenceConsumer {
    enum Mode {
        ReturnBomb,
        BurnAllGas,
        Reenter
    }

    InferenceRegistry internal immutable registry;
    Mode internal immutable mode;

    constructor(InferenceRegistry registry_, Mode mode_) {
        registry = registry_;
        mode = mode_;
    }

    function onInferenceResult(uint256 requestId, ResultKind, uint8, bytes calldata) external {
        if (mode == Mode.ReturnBomb) {
            assembly {
                revert(0, 50000)
            }
        }
        if (mode == Mode.BurnAllGas) {
            uint256 spin;
            while (gasleft() > 0) {
                spin += 1;
            }
        }
        registry.cancel(requestId); // reverts: the request is already final
    }
}

/// @notice Attacks on the registry from an independent review, each played as the attacker would play it and
///         asserting where the money ends.
contract InferenceRegistryAdversaryTest is RegistryFixture {
    using SparseMemory for SparseMemory.Memory;

    address internal constant LIAR_SYBIL = address(0x1A3);
    address internal constant LIAR2 = address(0x1A4);
    address internal constant LIAR3 = address(0x1A5);
    address internal constant COPIER = address(0xC0B1);
    address internal constant THROWER = address(0x7A0);
    address internal constant THROWER_SYBIL = address(0x7A1);
    address internal constant X1 = address(0x5E1);
    address internal constant X2 = address(0x5E2);
    address internal constant X3 = address(0x5E3);
    address internal constant GRIEFER = address(0x6E1);

    uint256 internal constant CLAIM_SHARE = CLAIM_BOND - CLAIM_BOND * BURN_BPS / 10_000;
    uint256 internal constant CHALLENGE_SHARE = CHALLENGE_BOND - CHALLENGE_BOND * BURN_BPS / 10_000;
    uint256 internal constant BLOCK_GAS_LIMIT = 30_000_000;

    error ProbeResult(bool finalized, uint256 gasAtEntry);
    error UnexpectedProbeData();

    function setUp() public override {
        super.setUp();
        address[10] memory extra = [LIAR_SYBIL, LIAR2, LIAR3, COPIER, THROWER, THROWER_SYBIL, X1, X2, X3, GRIEFER];
        for (uint256 i = 0; i < extra.length; ++i) {
            fund(extra[i], 100 ether);
        }
    }

    // --- accounting --------------------------------------------------------------------------------

    function _actors() internal view returns (address[17] memory) {
        return [
            REQUESTER,
            CLAIMANT,
            LIAR,
            CHALLENGER,
            SECOND_CHALLENGER,
            LIAR_SYBIL,
            LIAR2,
            LIAR3,
            COPIER,
            THROWER,
            THROWER_SYBIL,
            X1,
            X2,
            X3,
            GRIEFER,
            address(this),
            address(0)
        ];
    }

    /// @dev What the registry still holds for others: open fees, bonds of live claims and what is left of the
    ///      bonds of rejected claims whose last game is still running, and the challenge bonds of active games.
    function _escrow() internal view returns (uint256 total) {
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

    function _assertSolvent() internal view {
        address[17] memory actors = _actors();
        uint256 credits;
        for (uint256 i = 0; i < actors.length; ++i) {
            credits += registry.balances(actors[i]);
        }
        assertEq(
            address(registry).balance, credits + registry.burned() + _escrow(), "balance = credits + burned + escrow"
        );
    }

    // --- helpers -------------------------------------------------------------------------------------

    function _lie(uint8 exitCode) internal view returns (VMState.State memory s) {
        s = lyingFinalState();
        s.exitCode = exitCode;
    }

    /// @dev Plays a lie's game the honest challenger's way: the liar's hashes are honest below `divergence`.
    ///      Works for any claimed step count (hashes past the exit are those of the exited state).
    function _refute(uint256 gameId, address liar, address challenger, uint64 divergence)
        internal
        returns (uint256 rounds)
    {
        uint64 limit = game(gameId).hi;
        while (game(gameId).hi - game(gameId).lo > 1) {
            InferenceRegistry.Game memory g = game(gameId);
            assertTrue(g.hi <= limit, "never dissected beyond the claimed step");
            bytes32[] memory hashes = defenderHashes(g.lo, g.hi, divergence);
            vm.prank(liar);
            registry.bisect(gameId, hashes);
            uint256 segment = firstDisputed(g.lo, g.hi, hashes);
            vm.prank(challenger);
            registry.select(gameId, segment, hashes);
            rounds += 1;
        }
        resolveHonestly(gameId);
    }

    /// @dev The block time, read through a call: via-IR would otherwise re-read TIMESTAMP wherever a local
    ///      copied from block.timestamp is used, after later warps.
    function _rand(uint256 seed, uint256 salt) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, salt)));
    }

    function _memRootWithOutput(bytes memory output) internal view returns (bytes32 root) {
        bytes32[4] memory s = siblings();
        bytes32 node = InferenceLayout.hashPair(InferenceLayout.regionRoot(output), s[0]);
        node = InferenceLayout.hashPair(s[1], node);
        node = InferenceLayout.hashPair(node, s[2]);
        root = InferenceLayout.hashPair(node, s[3]);
    }

    // =================================================================================================
    // 1. Lying always costs
    // =================================================================================================

    // Attack: a liar challenges its own lie from a second account and concedes, to win its bond back.
    function test_ASybilSelfChallengeNeverRecoversTheWholeBond() public {
        uint256 lie = claimAs(LIAR, lyingFinalState());
        vm.prank(LIAR);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.OwnClaim.selector, lie));
        registry.challenge{value: CHALLENGE_BOND}(lie);
        uint256 gameId = challengeAs(LIAR_SYBIL, lie);
        play(gameId, LIAR, LIAR_SYBIL, 1, 0); // the liar concedes at once
        uint256 groupCredit = received(LIAR) + received(LIAR_SYBIL);
        uint256 groupPaid = CLAIM_BOND + CHALLENGE_BOND;
        uint256 sybilRefund = game(gameId).moves * MOVE_REFUND;
        assertEq(groupPaid - groupCredit, CLAIM_BOND - sybilRefund, "all but the sybil's move refunds is lost");
        assertTrue(groupPaid - groupCredit >= CLAIM_BOND - CLAIM_SHARE, "at least the burned share");
        assertEq(registry.burned(), CLAIM_BOND - sybilRefund, "burned");
        _assertSolvent();
    }

    // Attack: an unchallenged lie about to be burned after another result became final; the liar
    // self-challenges late to win back what it can.
    function test_AForfeitedLieStillCostsTheBurnShareWhenSelfChallengedLate() public {
        uint256 t = timestamp();
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS));
        vm.warp(t + WINDOW - 2);
        uint256 lie = claimAs(LIAR, lyingFinalState());
        vm.warp(t + WINDOW);
        finalizeWith(honest, honestState(STEPS));
        uint256 gameId = challengeAs(LIAR_SYBIL, lie); // still inside the lie's window
        play(gameId, LIAR, LIAR_SYBIL, 1, 0);
        uint256 recovered = received(LIAR) + received(LIAR_SYBIL) - CHALLENGE_BOND;
        assertTrue(recovered < CLAIM_BOND - CLAIM_SHARE, "the liar never recovers even the unburned share");
        assertEq(recovered, game(gameId).moves * MOVE_REFUND, "only its sybil's move refunds");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "the honest claimant is paid");
        _assertSolvent();
    }

    // Attack: the claimant's sybils challenge its own honest claim and lose, to recycle bonds.
    function test_LyingChallengersOfAnHonestClaimOnlyFundItsDefender() public {
        uint256 t = timestamp();
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS));
        uint256 g1 = challengeAs(X1, honest);
        uint256 g2 = challengeAs(X2, honest);
        play(g1, CLAIMANT, X1, STEPS + 1, 0x1234);
        vm.warp(t + WINDOW);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GamesStillOpen.selector, honest, 1));
        finalizeWith(honest, honestState(STEPS));
        bytes32[] memory hashes = defenderHashes(0, STEPS, STEPS + 1);
        vm.prank(CLAIMANT);
        registry.bisect(g2, hashes);
        vm.warp(t + WINDOW + CLOCK + 1);
        registry.timeout(g2);
        finalizeWith(honest, honestState(STEPS));
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND + 2 * CHALLENGE_SHARE, "defender paid");
        assertEq(received(X1) + received(X2), 0, "lying challengers lose everything");
        _assertSolvent();
    }

    // Attack: the liar's sybil opens a game against the lie; the liar plays one round in the sybil's game and
    // never answers the honest challenger. The defender decides how far every game gets, so it can always let its
    // own sybil prove the lie first; but a challenger is refunded only its own moves, not a prize: the sybil gets
    // back its bond and two moves' refunds, the honest challenger its bond and its moves', the rest is burned.
    function test_ALiarsSybilEarnsOnlyItsOwnMoves() public {
        uint256 lie = claimAs(LIAR, lyingFinalState());
        uint256 sybilGame = challengeAs(LIAR_SYBIL, lie);
        uint256 honestGame = challengeAs(CHALLENGER, lie);
        playRound(sybilGame, LIAR, LIAR_SYBIL, 1, 0); // one round in the sybil's game, none in the honest one
        vm.warp(timestamp() + CLOCK + 1);
        vm.prank(CHALLENGER);
        registry.timeout(honestGame); // the honest challenger proves the lie (the liar never answered it)
        vm.prank(LIAR_SYBIL);
        registry.timeout(sybilGame);
        _assertSolvent();
        assertTrue(claimStatus(lie) == InferenceRegistry.ClaimStatus.Rejected, "the lie is rejected");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + 2 * MOVE_REFUND, "the honest challenger: challenge + timeout");
        uint256 recovered = received(LIAR) + received(LIAR_SYBIL);
        assertEq(recovered, CHALLENGE_BOND + 3 * MOVE_REFUND, "the sybil: challenge, select, timeout");
        assertEq(registry.burned(), CLAIM_BOND - 5 * MOVE_REFUND, "the rest of the lie's bond is burned");
        assertTrue(CLAIM_BOND + CHALLENGE_BOND - recovered > CLAIM_BOND - CLAIM_SHARE, "more than the burn is lost");
    }

    // Attack (on a registry with tiny bonds): the burned share would round to zero, so a self-challenge would
    // be free. Such bonds are refused at deployment.
    function test_TinyBondsAreRefused() public {
        InferenceRegistry.Parameters memory p = parameters();
        p.claimBond = 1;
        p.challengeBond = 1;
        try new InferenceRegistry(mips, proofs, p) returns (InferenceRegistry tiny) {
            uint256 programId = tiny.registerProgram(programRoot, EXIT_ENTRY, InferenceRegistry.ProgramKind.WholeRun);
            uint256 model = tiny.registerModel(InferenceLayout.zeroRoot(25), keccak256(""), "empty");
            vm.prank(REQUESTER);
            uint256 id = tiny.requestInference{value: FEE}(programId, model, "", address(0), STEP_LIMIT);
            bytes32 commitment = tiny.commitmentOf(id, VMState.hash(lyingFinalState()), LIAR);
            vm.prank(LIAR);
            tiny.commitClaim(id, commitment);
            vm.roll(blockNumber() + 1);
            vm.prank(LIAR);
            uint256 lie = tiny.submitClaim{value: 1}(id, VMState.encode(lyingFinalState()));
            vm.prank(LIAR_SYBIL);
            uint256 gameId = tiny.challenge{value: 1}(lie);
            vm.warp(timestamp() + CLOCK + 1);
            tiny.timeout(gameId); // the liar concedes
            assertEq(tiny.balances(LIAR_SYBIL), 2, "the sybil holds both bonds");
            assertTrue(tiny.burned() > 0, "a self-challenge must burn something (or such bonds must be refused)");
        } catch {
            // refused at deployment: defeated
        }
    }

    // =================================================================================================
    // 2. Copying earns nothing
    // =================================================================================================

    // Attack: copy an honest reveal from the mempool and commit in the reveal's own block.
    function test_ACopiedClaimCommittedInTheRevealBlockEarnsNothing() public {
        VMState.State memory truth = honestState(STEPS);
        commit(CLAIMANT, requestId, truth);
        vm.roll(blockNumber() + 1);
        commit(COPIER, requestId, truth); // front-runs the reveal it read from the mempool
        uint256 honest = reveal(CLAIMANT, requestId, truth);
        vm.roll(blockNumber() + 1);
        uint256 copy = reveal(COPIER, requestId, truth);
        vm.warp(registry.getClaim(copy).submittedAt + WINDOW);
        finalizeWith(copy, truth);
        registry.settle(honest);
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "fee to the honest submitter");
        assertEq(received(COPIER), CLAIM_BOND, "the copier only gets its bond back");
        _assertSolvent();
    }

    // Attack: the honest reveal waits one block in the mempool (low tip, or a builder holds it); the copier
    // commits to it in that block, reveals in the next block beside it, and wins the finalize race (both
    // claims have the same window end). The fee follows the earliest commitment, not the finalizer.
    function test_ACopierWhoCommitsWhileTheRevealIsPendingEarnsNothing() public {
        VMState.State memory truth = honestState(STEPS);
        commit(CLAIMANT, requestId, truth);
        vm.roll(blockNumber() + 1);
        // the honest reveal is broadcast but not included in this block; the copier reads it and commits
        commit(COPIER, requestId, truth);
        vm.roll(blockNumber() + 1);
        uint256 honest = reveal(CLAIMANT, requestId, truth);
        uint256 copy = reveal(COPIER, requestId, truth);
        vm.warp(timestamp() + WINDOW);
        finalizeWith(copy, truth); // the copier's finalize goes first
        registry.settle(honest);
        _assertSolvent();
        assertEq(received(COPIER), CLAIM_BOND, "a copier earns nothing: its bond back");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "the fee goes to the honest submitter");
    }

    // Attack: a copycat challenger opens its game first, copies every move of the honest challenger one
    // step behind, and resolves first. Each is refunded its own moves; nobody takes a prize.
    function test_ACopycatChallengerEarnsOnlyItsOwnMoves() public {
        uint256 lie = claimAs(LIAR, lyingFinalState());
        uint256 copierGame = challengeAs(COPIER, lie);
        uint256 honestGame = challengeAs(CHALLENGER, lie);
        while (game(honestGame).hi - game(honestGame).lo > 1) {
            InferenceRegistry.Game memory g = game(honestGame);
            bytes32[] memory hashes = defenderHashes(g.lo, g.hi, 9);
            vm.prank(LIAR);
            registry.bisect(copierGame, hashes); // the liar even answers the copier first
            vm.prank(LIAR);
            registry.bisect(honestGame, hashes);
            uint256 segment = firstDisputed(g.lo, g.hi, hashes);
            vm.prank(CHALLENGER);
            registry.select(honestGame, segment, hashes);
            vm.prank(COPIER);
            registry.select(copierGame, segment, hashes);
        }
        resolveHonestlyAs(COPIER, copierGame); // the copier's game is resolved first, by the copier
        resolveHonestlyAs(CHALLENGER, honestGame);
        uint256 moves = 2 + game(honestGame).rounds; // challenge, every select, resolve
        assertEq(game(copierGame).moves, moves, "the copier made as many moves");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + moves * MOVE_REFUND, "the honest challenger is refunded");
        assertEq(received(COPIER), CHALLENGE_BOND + moves * MOVE_REFUND, "the copier: its own moves, no prize");
        assertEq(registry.burned(), CLAIM_BOND - 2 * moves * MOVE_REFUND, "the rest of the lie's bond is burned");
        _assertSolvent();
    }

    // =================================================================================================
    // 3. A lie cannot block an honest claim
    // =================================================================================================

    // Attack: a stalled lie and three lying challengers who each use every second of their clocks (the
    // last one opened in the window's final second); the honest claim is final exactly at window + 2 clocks.
    function test_ManyLiarsCannotHoldAnHonestClaimPastWindowPlusTwoClocks() public {
        uint256 t = timestamp();
        uint256 lie = claimAs(LIAR, lyingFinalState());
        uint256 lieGame = challengeAs(CHALLENGER, lie); // the liar will never answer
        t += 100;
        vm.warp(t);
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS));
        uint256 revealedAt = t;
        // the lie's window ends first, but its open game keeps it from finality
        t = revealedAt + WINDOW - 100;
        vm.warp(t);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GamesStillOpen.selector, lie, 1));
        finalizeWith(lie, lyingFinalState());

        t = revealedAt + WINDOW - 1;
        vm.warp(t);
        uint256 slow = challengeAs(X1, honest);
        uint256 random = challengeAs(X2, honest);
        uint256 silent = challengeAs(X3, honest);
        play(random, CLAIMANT, X2, STEPS + 1, 0xBEEF);
        bytes32[] memory first = defenderHashes(0, STEPS, STEPS + 1);
        vm.prank(CLAIMANT);
        registry.bisect(silent, first);
        // the slow game: each side spends its whole clock on one move
        vm.warp(t + CLOCK);
        vm.prank(CLAIMANT);
        registry.bisect(slow, first);
        vm.warp(t + 2 * CLOCK);
        vm.prank(X1);
        registry.select(slow, 0, first);
        InferenceRegistry.Game memory g = game(slow);
        bytes32[] memory second = defenderHashes(g.lo, g.hi, STEPS + 1);
        vm.prank(CLAIMANT);
        registry.bisect(slow, second); // no time left: answers in the same second
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClockNotExpired.selector, slow));
        registry.timeout(slow);

        vm.warp(revealedAt + WINDOW + 2 * CLOCK);
        registry.timeout(slow);
        registry.timeout(silent);
        registry.timeout(lieGame);
        finalizeWith(honest, honestState(STEPS));
        assertTrue(isFinal(requestId), "final at window + 2 clocks");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND + 3 * CHALLENGE_SHARE, "the defender is paid");
        // the lie's challenger made one move (a bystander's timeout ended its game)
        assertEq(received(CHALLENGER), CHALLENGE_BOND + MOVE_REFUND, "the lie's challenger is refunded");
        _assertSolvent();
    }

    // Attack (issue attack 1 replayed): a lie with a stalling self-challenge no longer blocks a new honest claim.
    function test_AStalledLieDoesNotKeepTheRequestFromAnHonestClaim() public {
        uint256 lie = claimAs(LIAR, lyingFinalState());
        uint256 sybilGame = challengeAs(LIAR_SYBIL, lie);
        uint256 honestGame = challengeAs(CHALLENGER, lie);
        uint256 t = timestamp() + 10;
        vm.warp(t);
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS)); // accepted while the lie is live
        vm.warp(t + WINDOW);
        finalizeWith(honest, honestState(STEPS));
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "honest claim final with its games untouched");
        vm.warp(t + WINDOW + CLOCK);
        registry.timeout(sybilGame);
        registry.timeout(honestGame);
        _assertSolvent();
    }

    // Attack: a worker who knows the true result reveals it first and throws its own game against a sybil
    // (wrong interior hashes), to lock out everybody who committed later. They still claim and finalize it;
    // the fee goes to the first committer (the thrower, who paid the burned share for its throw).
    function test_AThrownRevealOfTheTrueResultLocksNobodyOut() public {
        VMState.State memory truth = honestState(STEPS);
        commit(THROWER, requestId, truth);
        vm.roll(blockNumber() + 1);
        uint256 thrown = reveal(THROWER, requestId, truth); // ordered ahead of the honest worker's commit
        commit(CLAIMANT, requestId, truth); // same block
        uint256 gameId = challengeAs(THROWER_SYBIL, thrown);
        play(gameId, THROWER, THROWER_SYBIL, 1, 0); // the thrower defends the truth with wrong hashes
        assertTrue(claimStatus(thrown) == InferenceRegistry.ClaimStatus.Rejected, "the true claim was thrown");
        _assertSolvent();

        vm.roll(blockNumber() + 1);
        bytes memory finalState = VMState.encode(truth);
        uint256 honest;
        vm.prank(CLAIMANT);
        try registry.submitClaim{value: CLAIM_BOND}(requestId, finalState) returns (uint256 id) {
            honest = id;
            deposited[CLAIMANT] += CLAIM_BOND;
        } catch {}
        assertTrue(honest != 0, "an honest worker can still claim the true result");
        vm.warp(registry.getClaim(honest).submittedAt + WINDOW);
        finalizeWith(honest, truth);
        assertEq(received(CLAIMANT), CLAIM_BOND, "its bond back");
        assertEq(received(THROWER), FEE, "the fee to the first committer");
        uint256 sybilRefund = game(gameId).moves * MOVE_REFUND;
        assertEq(registry.burned(), CLAIM_BOND - sybilRefund, "whose throw cost it all but its sybil's moves");
    }

    // Attack: a griefer challenges an honest duplicate after the result is final, to keep its bond locked.
    function test_AGrieferOfAFinalResultsDuplicateOnlyPaysItsDefender() public {
        VMState.State memory truth = honestState(STEPS);
        commit(CLAIMANT, requestId, truth);
        commit(SECOND_CHALLENGER, requestId, truth); // an independent worker, committed before any reveal
        vm.roll(blockNumber() + 1);
        uint256 t = timestamp();
        uint256 honest = reveal(CLAIMANT, requestId, truth);
        vm.warp(t + 10);
        uint256 duplicate = reveal(SECOND_CHALLENGER, requestId, truth);
        vm.warp(t + WINDOW);
        finalizeWith(honest, truth);
        uint256 gameId = challengeAs(GRIEFER, duplicate);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GamesStillOpen.selector, duplicate, 1));
        registry.settle(duplicate);
        play(gameId, SECOND_CHALLENGER, GRIEFER, STEPS + 1, 7);
        registry.settle(duplicate);
        assertEq(received(SECOND_CHALLENGER), CLAIM_BOND + CHALLENGE_SHARE, "bond back plus the griefer's");
        assertEq(received(GRIEFER), 0, "the griefer loses");
        _assertSolvent();
    }

    // Fuzz: any mix of lies (stalled or played), lying challengers (silent or random) and an honest claim at any
    // position ends with the truth final by window + 2 clocks, and the money where it should be.
    /// forge-config: default.fuzz.runs = 48
    function testFuzz_AnyMixOfLiesAndChallengesEndsWithTheTruthInTime(uint256 seed) public {
        address[3] memory liars = [LIAR, LIAR2, LIAR3];
        address[3] memory xs = [X1, X2, X3];
        uint256 lies = seed % 4;
        uint256 honestPosition = _rand(seed, 1) % (lies + 1);
        uint256 t = timestamp();
        uint256 honest;
        uint256 honestAt;
        uint256 lieIndex;
        for (uint256 i = 0; i <= lies; ++i) {
            if (i == honestPosition) {
                honest = claimAs(CLAIMANT, honestState(STEPS));
                honestAt = t;
            } else {
                address liar = liars[lieIndex];
                uint256 lie = claimAs(liar, _lie(uint8(7 + lieIndex)));
                uint256 gameId = challengeAs(CHALLENGER, lie);
                uint256 r = _rand(seed, 10 + i);
                if (r % 2 == 0) play(gameId, liar, CHALLENGER, uint64(1 + (r >> 8) % STEPS), 0);
                lieIndex += 1;
            }
            _assertSolvent();
            t += _rand(seed, 20 + i) % (WINDOW / 8);
            vm.warp(t);
        }
        uint256 challengers = _rand(seed, 2) % 4;
        t = honestAt + WINDOW - 1;
        vm.warp(t);
        for (uint256 j = 0; j < challengers; ++j) {
            uint256 gameId = challengeAs(xs[j], honest);
            uint256 r = _rand(seed, 30 + j);
            if (r % 2 == 0) {
                play(gameId, CLAIMANT, xs[j], STEPS + 1, r >> 8);
            } else {
                bytes32[] memory hashes = defenderHashes(0, STEPS, STEPS + 1);
                vm.prank(CLAIMANT);
                registry.bisect(gameId, hashes); // then the liar goes silent
            }
        }
        _assertSolvent();

        vm.warp(honestAt + WINDOW + 2 * CLOCK);
        for (uint256 id = 1; id <= registry.gameCount(); ++id) {
            if (game(id).status == InferenceRegistry.GameStatus.Active) registry.timeout(id);
        }
        finalizeWith(honest, honestState(STEPS));
        (bool final_, InferenceRegistry.Result memory result) = registry.resultOf(requestId);
        assertTrue(final_ && result.kind == ResultKind.Output && result.exitCode == 0, "the truth is final");
        assertEq(registry.getRequest(requestId).liveClaims, 0, "every lie was rejected");
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND + challengers * CHALLENGE_SHARE, "honest claimant");
        uint256 refunds; // the honest challenger's moves, in every game it won
        for (uint256 id = 1; id <= registry.gameCount(); ++id) {
            if (game(id).challenger == CHALLENGER) refunds += game(id).moves * MOVE_REFUND;
        }
        assertEq(received(CHALLENGER), lies * CHALLENGE_BOND + refunds, "honest challenger: bonds and moves");
        for (uint256 k = 0; k < 3; ++k) {
            assertEq(received(liars[k]) + received(xs[k]), 0, "liars get nothing");
        }
        assertEq(
            registry.burned(), lies * CLAIM_BOND - refunds + challengers * (CHALLENGE_BOND - CHALLENGE_SHARE), "burned"
        );
        _assertSolvent();
    }

    // =================================================================================================
    // 4. Every request ends; games stay within the step limit
    // =================================================================================================

    // Attack: the largest step count a deployment allows, claimed as a late exit: it loses within
    // log_k(2^64) rounds and no segment passes the claimed step.
    function test_AMaximalStepCountLosesWithinTheDepthBound() public {
        InferenceRegistry.Parameters memory p = parameters();
        p.maxStepLimit = type(uint64).max;
        registry = new InferenceRegistry(mips, proofs, p);
        exitProgramId = registry.registerProgram(programRoot, EXIT_ENTRY, InferenceRegistry.ProgramKind.WholeRun);
        modelId = registry.registerModel(InferenceLayout.zeroRoot(25), keccak256(""), "empty");
        requestId = request(exitProgramId, type(uint64).max);
        VMState.State memory lie = honestState(STEPS);
        lie.step = type(uint64).max;
        uint256 claimId = claimAs(LIAR, lie);
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        uint256 rounds = _refute(gameId, LIAR, CHALLENGER, STEPS + 1);
        assertTrue(rounds <= 32, "at most log_4(2^64) rounds");
        assertEq(game(gameId).lo, STEPS, "narrowed to the step after the true exit");
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.ChallengerWon, "the late exit loses");
        _assertSolvent();
    }

    // Attack: claim "ran out of steps" for a run that exits early; the step from the exited state refutes it.
    function test_AStepLimitClaimOnAnExitingRunLoses() public {
        VMState.State memory lie = honestState(STEPS);
        lie.exited = false;
        lie.step = STEP_LIMIT;
        uint256 claimId = claimAs(LIAR, lie);
        uint256 gameId = challengeAs(CHALLENGER, claimId);
        _refute(gameId, LIAR, CHALLENGER, STEPS + 1);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.ChallengerWon, "refuted");
        assertTrue(game(gameId).hi <= STEP_LIMIT, "within the step limit");
        _assertSolvent();
    }

    // Attack: the requester cancels at the deadline under a live honest claim, to take its fee back.
    function test_TheRequesterCannotCancelUnderALiveClaim() public {
        uint256 t = timestamp() + REQUEST_TIMEOUT - 1;
        vm.warp(t);
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS));
        vm.warp(t + 1);
        uint256 lastResort = t + WINDOW + 2 * CLOCK + REQUEST_TIMEOUT;
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClaimsStillLive.selector, requestId, 1, lastResort));
        registry.cancel(requestId);
        vm.warp(t + WINDOW);
        finalizeWith(honest, honestState(STEPS));
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotOpen.selector, requestId));
        registry.cancel(requestId);
        assertEq(received(CLAIMANT), FEE + CLAIM_BOND, "fee to the claimant");
        assertEq(received(REQUESTER), 0, "no refund");
        _assertSolvent();
    }

    // Attack: a claim whose output is large (the largest a result may carry here) locks its request if
    // `finalize` cannot fit in a block (it once copied the output into storage, ~22k gas a word); now only its
    // hash is stored. (Longer outputs end as OutputTooLarge: InferenceRegistryEndings.t.sol.)
    function test_ALargeOutputClaimCanBeFinalizedWithinABlock() public {
        bytes memory output = new bytes(registry.MAX_OUTPUT_BYTES());
        for (uint256 i = 0; i < output.length; i += 32) {
            output[i] = 0xAB; // one non-zero byte a word: every storage word of the output is written
        }
        VMState.State memory s = honestState(STEPS);
        s.memRoot = _memRootWithOutput(output);
        bytes memory finalState = VMState.encode(s);
        commit(CLAIMANT, requestId, s);
        vm.roll(blockNumber() + 1);
        uint256 before = gasleft();
        vm.prank(CLAIMANT);
        uint256 claimId = registry.submitClaim{value: CLAIM_BOND}(requestId, finalState);
        deposited[CLAIMANT] += CLAIM_BOND;
        uint256 submitGas = before - gasleft();
        assertTrue(submitGas < BLOCK_GAS_LIMIT / 4, "the claim fits in a block easily");
        vm.warp(timestamp() + REQUEST_TIMEOUT);
        bool finalized;
        try registry.finalize{gas: BLOCK_GAS_LIMIT}(claimId, finalState, output, siblings()) {
            finalized = true;
        } catch {}
        assertTrue(finalized, "a claim that could be submitted can be finalized within a block");
    }

    // =================================================================================================
    // 5. Games: no bogus proof, no clock trick
    // =================================================================================================

    // Attack: a losing liar challenger resolves the last step itself with a doctored step proof.
    function test_ABogusStepProofCannotFlipAGame() public {
        uint256 honest = claimAs(CLAIMANT, honestState(STEPS));
        uint256 gameId = challengeAs(X1, honest);
        uint256 choices = 0x5A5A;
        while (game(gameId).hi - game(gameId).lo > 1) {
            choices = playRound(gameId, CLAIMANT, X1, STEPS + 1, choices);
        }
        VMState.State memory pre = honestState(game(gameId).lo);
        SparseMemory.Memory memory m = _memory();
        bytes memory stateData = VMState.encode(pre);
        for (uint256 half = 0; half < 2; ++half) {
            bytes memory proof = abi.encodePacked(m.proof(pre.pc), m.proof(pre.pc));
            uint256 flip = half * proof.length / 2 + 3;
            proof[flip] = bytes1(uint8(proof[flip]) ^ 0x01);
            vm.prank(X1);
            try registry.resolve(gameId, stateData, proof) {} catch {}
            assertTrue(game(gameId).status != InferenceRegistry.GameStatus.ChallengerWon, "a bogus proof flips nothing");
        }
        if (game(gameId).status == InferenceRegistry.GameStatus.Active) resolveHonestly(gameId);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.DefenderWon, "the honest defender wins");
        _assertSolvent();
    }

    // Attack: move and time out in the same second at the clock's edge to win a game that is not over.
    function test_NoMoveAndTimeoutAreBothPossibleAtTheClocksEdge() public {
        uint256 lie = claimAs(LIAR, lyingFinalState());
        uint256 gameId = challengeAs(CHALLENGER, lie);
        uint256 t = timestamp() + CLOCK;
        vm.warp(t);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClockNotExpired.selector, gameId));
        registry.timeout(gameId);
        bytes32[] memory hashes = defenderHashes(0, STEPS, 1);
        vm.prank(LIAR);
        registry.bisect(gameId, hashes); // exactly on time
        vm.warp(t + 1);
        vm.prank(LIAR);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClockNotExpired.selector, gameId));
        registry.timeout(gameId); // the challenger still has a whole clock
        vm.prank(CHALLENGER);
        registry.select(gameId, 0, hashes);
        bytes32[] memory next = defenderHashes(game(gameId).lo, game(gameId).hi, 1);
        vm.warp(t + 2); // the liar's clock is empty: one second late
        vm.prank(LIAR);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClockExpired.selector, gameId));
        registry.bisect(gameId, next);
        registry.timeout(gameId);
        assertTrue(game(gameId).status == InferenceRegistry.GameStatus.ChallengerWon, "the liar ran out of time");
        _assertSolvent();
    }

    // =================================================================================================
    // 6. Callbacks cannot block finalization or be starved
    // =================================================================================================

    // Attack: consumers that revert with a huge return, burn all their gas, or re-enter the registry.
    function test_HostileConsumersCannotBlockFinalize() public {
        for (uint256 mode = 0; mode < 4; ++mode) {
            address consumer;
            if (mode < 3) {
                consumer = address(new HostileConsumer(registry, HostileConsumer.Mode(mode)));
            } else {
                consumer = address(new GasMeter());
            }
            vm.prank(REQUESTER);
            uint256 id = registry.requestInference{value: FEE}(exitProgramId, modelId, "", consumer, STEP_LIMIT);
            uint256 claimId = claimFor(CLAIMANT, id, honestState(STEPS));
            if (mode == 3) vm.etch(consumer, ""); // the consumer's code is gone by finalization
            vm.warp(registry.getClaim(claimId).submittedAt + WINDOW);
            bytes memory finalState = VMState.encode(honestState(STEPS));
            bytes32[4] memory s = siblings();
            vm.expectEmit(true, false, false, true);
            emit InferenceRegistry.CallbackFailed(id, consumer);
            uint256 before = gasleft();
            registry.finalize(claimId, finalState, "", s);
            assertTrue(before - gasleft() < CALLBACK_GAS + 100_000, "a hostile callback costs at most its gas");
            assertTrue(isFinal(id), "final");
        }
        assertEq(received(CLAIMANT), 4 * (FEE + CLAIM_BOND), "paid every time");
        _assertSolvent();
    }

    function probeFinalize(uint256 claimId, uint256 gasToSend, GasMeter meter) external {
        bool finalized;
        try registry.finalize{gas: gasToSend}(claimId, VMState.encode(honestState(STEPS)), "", siblings()) {
            finalized = true;
        } catch {}
        revert ProbeResult(finalized, meter.gasAtEntry());
    }

    function _probe(uint256 claimId, uint256 gasToSend, GasMeter meter) internal returns (bool, uint256) {
        try this.probeFinalize(claimId, gasToSend, meter) {}
        catch (bytes memory data) {
            if (data.length != 68 || bytes4(data) != ProbeResult.selector) revert UnexpectedProbeData();
            bool finalized;
            uint256 gasAtEntry;
            assembly {
                finalized := mload(add(data, 36))
                gasAtEntry := mload(add(data, 68))
            }
            return (finalized, gasAtEntry);
        }
        revert UnexpectedProbeData();
    }

    // Attack: call finalize with just enough gas that the consumer gets less than its callback gas and
    // the callback is skipped for ever.
    function test_TooLittleGasCannotStarveTheCallback() public {
        GasMeter meter = new GasMeter();
        vm.prank(REQUESTER);
        uint256 id = registry.requestInference{value: FEE}(exitProgramId, modelId, "", address(meter), STEP_LIMIT);
        uint256 claimId = claimFor(CLAIMANT, id, honestState(STEPS));
        vm.warp(registry.getClaim(claimId).submittedAt + WINDOW);
        (bool ok, uint256 fullGas) = _probe(claimId, 5_000_000, meter);
        assertTrue(ok && fullGas > CALLBACK_GAS - 2_000, "with plenty of gas the consumer gets its callback gas");
        uint256 lo = 20_000;
        uint256 hi = 5_000_000;
        while (hi - lo > 1) {
            uint256 mid = (lo + hi) / 2;
            (ok,) = _probe(claimId, mid, meter);
            if (ok) hi = mid;
            else lo = mid;
        }
        for (uint256 g = hi; g < hi + 40_000; g += 997) {
            uint256 seen;
            (ok, seen) = _probe(claimId, g, meter);
            assertTrue(ok, "finalize succeeds above the threshold");
            assertEq(seen, fullGas, "and whenever it succeeds the consumer got its whole callback gas");
        }
    }

    // =================================================================================================
    // 7. Storage-packing casts
    // =================================================================================================

    // Attack (on a chain with a huge native supply, e.g. a dev chain): a fee above 2^128 wei would be
    // narrowed to uint128 in storage, the excess locked for ever.
    function test_AFeeAbove128BitsIsRefused() public {
        uint256 huge = uint256(type(uint128).max) + 1 + FEE;
        vm.deal(REQUESTER, huge);
        vm.prank(REQUESTER);
        try registry.requestInference{value: huge}(exitProgramId, modelId, "", address(0), STEP_LIMIT) returns (
            uint256 id
        ) {
            assertEq(registry.getRequest(id).fee, huge, "the fee is recorded in full (or refused)");
        } catch {}
    }
}
