// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer, InferenceRegistry} from "../src/InferenceRegistry.sol";
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

    function onInferenceResult(uint256, bool, uint8, bytes calldata) external {
        gasAtEntry = gasleft();
        uint256 stopAt = gasAtEntry + 30_000 - needs; // keep enough to write `done`
        while (gasleft() > stopAt) {}
        done = true;
    }
}

/// @dev A consumer whose callback always reverts with a large reason.
contract RevertingConsumer is IInferenceConsumer {
    function onInferenceResult(uint256, bool, uint8, bytes calldata) external pure {
        assembly {
            revert(0, 100000)
        }
    }
}

/// @notice Each attack found on the first registry (issue 8), played as the attacker would, asserting that
///         it now fails and that the money ends where it should; then random interleavings of honest and
///         lying parties, checked for the protocol's properties.
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
    ///      step in the same block (so it ranks first); stalls the honest challenger's game; concedes its own
    ///      game at the last second; and claims the lie again, over and over. The honest claim is final
    ///      within one window and two clocks regardless, and every round costs the liar half a bond.
    function test_Attack1_SelfChallengeNeitherPaysNorBlocks() public {
        uint256 before = LIAR.balance + LIAR_ALT.balance;
        uint256 honestClaim = claimAs(CLAIMANT, honestState(STEPS));
        uint256 revealedAt = timestamp();

        uint256 lies = 3;
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
            resolveHonestly(honestGame);
            assertTrue(claimStatus(lieId) == InferenceRegistry.ClaimStatus.Rejected, "the lie is rejected");
            // the self-game is still open: the claim's bond waits for it
            vm.warp(game(selfGame).lastMoveAt + CLOCK + 1);
            registry.timeout(selfGame); // the liar's defender concedes to the liar's challenger
        }
        vm.warp(revealedAt + WINDOW);
        finalizeWith(honestClaim, honestState(STEPS));
        assertTrue(timestamp() <= revealedAt + WINDOW + 2 * CLOCK, "final within the bound");

        _withdrawAll(LIAR);
        _withdrawAll(LIAR_ALT);
        uint256 lost = before - (LIAR.balance + LIAR_ALT.balance);
        assertEq(lost, lies * (CLAIM_BOND - kept(CLAIM_BOND)), "every lie burned half its bond");
        assertEq(received(CHALLENGER), lies * CHALLENGE_BOND, "the honest challenger is whole");
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
        for (uint256 i = 0; i < count; ++i) registry.timeout(gameIds[i]);
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
        registry.commitClaim(honestCommitment);
        vm.roll(blockNumber() + 1);

        // the honest reveal sits in the mempool for this block: the copier commits, and replays the commitment
        vm.prank(COPIER);
        registry.commitClaim(registry.commitmentOf(requestId, VMState.hash(honest), COPIER));
        vm.prank(COPIER);
        registry.commitClaim(honestCommitment);
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

    // --- 3. copycat challenger --------------------------------------------------------------------

    /// @dev The copycat front-runs the honest challenge (its game is older), copies every select right after
    ///      the honest one, and resolves first. The claim's bond still goes to the honest challenger.
    function test_Attack3_ACopycatChallengerEarnsNothing() public {
        uint256 lieId = claimAs(LIAR, lyingFinalState());
        uint256 copy = challengeAs(COPIER, lieId);
        uint256 honestGame = challengeAs(CHALLENGER, lieId);
        while (game(honestGame).hi - game(honestGame).lo > 1) {
            playRound(honestGame, LIAR, CHALLENGER, 5, 0);
            playRound(copy, LIAR, COPIER, 5, 0); // the same lie answered by copying the honest select
        }
        resolveHonestly(copy); // the copier resolves first
        resolveHonestly(honestGame);
        assertEq(received(COPIER), CHALLENGE_BOND, "the copier only gets its bond back");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + kept(CLAIM_BOND), "the honest challenger is paid");
    }

    /// @dev The copycat stops copying one round short (so its last move predates the honest last move) and
    ///      waits for the abandoned game to time out. Fewer rounds rank lower: it still earns nothing.
    function test_Attack3_ACopycatThatStopsEarlyEarnsNothing() public {
        uint256 lieId = claimAs(LIAR, lyingFinalState());
        uint256 copy = challengeAs(COPIER, lieId);
        uint256 honestGame = challengeAs(CHALLENGER, lieId);
        playRound(honestGame, LIAR, CHALLENGER, 5, 0);
        playRound(copy, LIAR, COPIER, 5, 0);
        playRound(honestGame, LIAR, CHALLENGER, 5, 0);
        while (game(honestGame).hi - game(honestGame).lo > 1) playRound(honestGame, LIAR, CHALLENGER, 5, 0);
        vm.warp(timestamp() + CLOCK + 1); // the liar abandons both games
        registry.timeout(copy);
        registry.timeout(honestGame);
        assertEq(received(COPIER), CHALLENGE_BOND, "the copier only gets its bond back");
        assertEq(received(CHALLENGER), CHALLENGE_BOND + kept(CLAIM_BOND), "the honest challenger is paid");
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
        assertTrue(final_ && !result.exited, "ended by its step limit");

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
            for (uint256 i = 0; i < hashes.length; ++i) hashes[i] = VMState.hash(loopState(steps[i + 1]));
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
    ///      disputes every lie. Every game is played to its end in chain-time order. The true result is
    ///      final within window + 2 x clock of the honest reveal; the liars end poorer, the honest parties no
    ///      poorer; and the ether adds up: credits + burned == deposits == the contract's balance.
    function testFuzz_InterleavingsEndWithTheTruthAndTheBooksBalance(uint256 seed) public {
        deposits = FEE;
        uint256 start = timestamp();
        uint256 lieCount = seed % 4;
        uint256[] memory lies = new uint256[](lieCount);
        for (uint256 i = 0; i < lieCount; ++i) {
            seed = _next(seed);
            vm.warp(start + seed % (WINDOW / 2));
            VMState.State memory lie = honestState(STEPS);
            lie.step = uint64(bound(seed >> 8, 1, STEPS + 5));
            lie.exitCode = uint8(1 + i);
            lie.exited = true;
            lies[i] = _claim(i % 2 == 0 ? LIAR : LIAR_ALT, lie);
            // the honest challenger disputes every lie; sometimes the liar's other account does so first
            if (seed % 3 == 0) _challenge(lies[i], i % 2 == 0 ? LIAR_ALT : LIAR, false, false, seed);
            _challenge(lies[i], CHALLENGER, false, true, seed >> 16);
        }
        seed = _next(seed);
        vm.warp(start + seed % (WINDOW / 2));
        uint256 honestClaim = _claim(CLAIMANT, honestState(STEPS));
        uint256 revealedAt = timestamp();
        uint256 liarChallenges = (seed >> 8) % 3;
        for (uint256 i = 0; i < liarChallenges; ++i) {
            seed = _next(seed);
            vm.warp(revealedAt + seed % WINDOW);
            _challenge(honestClaim, i % 2 == 0 ? LIAR : LIAR_ALT, true, false, seed);
        }

        _playAllGames();
        if (timestamp() < revealedAt + WINDOW) vm.warp(revealedAt + WINDOW);
        finalizeWith(honestClaim, honestState(STEPS));
        assertTrue(timestamp() <= revealedAt + WINDOW + 2 * CLOCK, "final within the bound");
        (, InferenceRegistry.Result memory result) = registry.resultOf(requestId);
        assertTrue(result.exited && result.exitCode == 0, "the true result");
        for (uint256 i = 0; i < lieCount; ++i) {
            assertTrue(claimStatus(lies[i]) == InferenceRegistry.ClaimStatus.Rejected, "every lie is rejected");
        }

        address[5] memory actors = [CLAIMANT, CHALLENGER, LIAR, LIAR_ALT, REQUESTER];
        (uint256 returned, uint256 credited) = (0, 0);
        for (uint256 i = 0; i < actors.length; ++i) {
            returned += received(actors[i]);
            credited += registry.balances(actors[i]);
        }
        assertEq(returned + registry.burned(), deposits, "paid + credited + burned == deposits");
        assertEq(address(registry).balance, credited + registry.burned(), "the contract holds credits + burned");
        assertTrue(received(CLAIMANT) >= FEE + CLAIM_BOND, "the honest claimant is paid in full");
        assertTrue(received(CHALLENGER) >= lieCount * CHALLENGE_BOND, "the honest challenger is whole");
        uint256 liarsPaidIn = (lieCount * CLAIM_BOND) + _liarChallengeBonds();
        assertTrue(
            received(LIAR) + received(LIAR_ALT) + lieCount * (CLAIM_BOND - kept(CLAIM_BOND))
                <= liarsPaidIn,
            "every lie costs at least its burned share"
        );
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
        bool provable = g.hi - g.lo == 1 && g.loHash == honestHash(g.lo);
        if (timestamp() - g.lastMoveAt > clock || (defenderToMove && g.hi - g.lo <= 1 && !provable)) {
            // out of time, or a step nobody can prove (zero width, or a made-up agreed state): wait it out
            if (timestamp() - g.lastMoveAt <= clock) vm.warp(g.lastMoveAt + clock + 1);
            registry.timeout(p.gameId);
            return;
        }
        if (defenderToMove && g.hi - g.lo == 1) {
            resolveHonestly(p.gameId);
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
