// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer, InferenceRegistry} from "../src/InferenceRegistry.sol";
import {InferenceLayout} from "../src/InferenceLayout.sol";
import {MIPS} from "../src/MIPS.sol";
import {VMState} from "../src/VMState.sol";
import {SparseMemory} from "./helpers/SparseMemory.sol";
import {TestBase} from "./helpers/TestBase.sol";

contract Consumer is IInferenceConsumer {
    uint256 public lastRequest;
    bytes public lastOutput;

    function onInferenceResult(uint256 requestId, uint8, bytes calldata output) external {
        lastRequest = requestId;
        lastOutput = output;
    }
}

/// @dev Withdraws again from inside the payment it receives.
contract Reentrant {
    InferenceRegistry internal registry;

    constructor(InferenceRegistry registry_) {
        registry = registry_;
    }

    function claim(uint256 requestId, bytes calldata state, bytes calldata output, bytes32[4] calldata siblings)
        external
        payable
    {
        registry.submitClaim{value: msg.value}(requestId, state, output, siblings);
    }

    function withdraw() external {
        registry.withdraw();
    }

    receive() external payable {
        registry.withdraw();
    }
}

/// @notice The registry and dispute game on a real trace: a program of NOPS no-ops, `addiu v0, zero, 4246`
///         and `syscall` (exit_group(0)), whose states and step proofs the test builds, so every game ends
///         in a real MIPS.step.
contract InferenceRegistryTest is TestBase {
    using SparseMemory for SparseMemory.Memory;

    uint32 internal constant ENTRY = 0x1000;
    uint256 internal constant NOPS = 21;
    uint64 internal constant STEPS = uint64(NOPS + 2);
    uint256 internal constant ARITY = 4;
    uint256 internal constant BOND = 1 ether;
    uint256 internal constant WINDOW = 1 hours;
    uint256 internal constant CLOCK = 1 days;
    uint256 internal constant FEE = 0.5 ether;

    MIPS internal mips;
    InferenceRegistry internal registry;
    SparseMemory.Memory internal program;
    bytes32 internal programRoot;
    uint256 internal requestId;

    address internal constant CLAIMANT = address(0xC1A1);
    address internal constant CHALLENGER = address(0xC4A1);
    address internal constant SECOND_CHALLENGER = address(0xC4A2);

    function setUp() public {
        mips = new MIPS();
        registry = new InferenceRegistry(
            mips, InferenceRegistry.Parameters(ARITY, BOND, BOND, WINDOW, CLOCK, 100_000)
        );
        SparseMemory.Memory memory m = SparseMemory.empty();
        m = m.withWord(ENTRY + uint32(4 * NOPS), 0x24021096); // addiu v0, zero, 4246
        m = m.withWord(ENTRY + uint32(4 * NOPS + 4), 0x0000000C); // syscall
        program.addrs = m.addrs;
        program.leaves = m.leaves;
        programRoot = m.subtreeRoot(InferenceLayout.REGION_HEIGHT, 0);
        uint256 programId = registry.registerProgram(programRoot, ENTRY);
        uint256 modelId = registry.registerModel(InferenceLayout.zeroRoot(25), keccak256(""), "empty");
        requestId = registry.requestInference{value: FEE}(programId, modelId, "", address(0));
        vm.deal(CLAIMANT, 10 ether);
        vm.deal(CHALLENGER, 10 ether);
        vm.deal(SECOND_CHALLENGER, 10 ether);
    }

    // --- the honest trace --------------------------------------------------------------------

    function _memory() internal view returns (SparseMemory.Memory memory m) {
        m.addrs = program.addrs;
        m.leaves = program.leaves;
    }

    function honestState(uint64 step) internal view returns (VMState.State memory s) {
        s.memRoot = _memory().root();
        s.heap = InferenceLayout.HEAP_START;
        s.registers[29] = InferenceLayout.STACK_TOP;
        uint64 executed = step > STEPS ? STEPS : step;
        s.step = executed;
        s.pc = ENTRY + uint32(4 * (executed > NOPS + 1 ? NOPS + 1 : executed));
        s.nextPC = s.pc + 4;
        if (executed > NOPS) s.registers[2] = 4246;
        if (executed == STEPS) s.exited = true;
    }

    function honestHash(uint64 step) internal view returns (bytes32) {
        return VMState.hash(honestState(step));
    }

    function siblings() internal view returns (bytes32[4] memory s) {
        bytes32 zero23 = InferenceLayout.zeroRoot(23);
        s = [zero23, keccak256(abi.encodePacked(programRoot, zero23)), InferenceLayout.zeroRoot(25), InferenceLayout.zeroRoot(26)];
    }

    function claimAs(address claimant, VMState.State memory finalState) internal returns (uint256) {
        vm.prank(claimant);
        return registry.submitClaim{value: BOND}(requestId, VMState.encode(finalState), "", siblings());
    }

    /// @dev Finalize `id` with the honest claim's arguments.
    function finalizeHonest(uint256 id) internal {
        registry.finalize(id, VMState.encode(honestState(STEPS)), "", siblings());
    }

    function test_FinalizeChecksTheClaimedStateAndOutput() public {
        claimAs(CLAIMANT, honestState(STEPS));
        vm.warp(block.timestamp + WINDOW);
        bytes memory other = VMState.encode(lyingFinalState());
        bytes memory finalState = VMState.encode(honestState(STEPS));
        bytes32[4] memory s = siblings();
        vm.expectRevert(InferenceRegistry.FinalStateMismatch.selector);
        registry.finalize(requestId, other, "", s);
        vm.expectRevert(InferenceRegistry.OutputNotInState.selector);
        registry.finalize(requestId, finalState, "forged", s);
        finalizeHonest(requestId);
    }

    function lyingFinalState() internal view returns (VMState.State memory s) {
        s = honestState(STEPS);
        s.exitCode = 7; // a different result of the same run
    }

    // --- playing -----------------------------------------------------------------------------------

    function gameBounds(uint256 gameId) internal view returns (uint64 lo, uint64 hi) {
        (,,,, lo, hi,,,,,,) = registry.games(gameId);
    }

    function gameStatus(uint256 gameId) internal view returns (InferenceRegistry.GameStatus status) {
        (,, status,,,,,,,,,) = registry.games(gameId);
    }

    /// @dev Defender hashes for the interior points: honest before `divergence`, made up from it on.
    function defenderHashes(uint64 lo, uint64 hi, uint64 divergence) internal view returns (bytes32[] memory hashes) {
        uint64[] memory at = registry.points(lo, hi);
        hashes = new bytes32[](at.length - 2);
        for (uint256 i = 0; i < hashes.length; ++i) {
            uint64 step = at[i + 1];
            hashes[i] = step < divergence ? honestHash(step) : keccak256(abi.encode("lie", step));
        }
    }

    /// @dev The first segment whose end the honest challenger disagrees with (the last one, whose end is
    ///      the disputed hash itself, if it agrees with every interior hash).
    function firstDisputed(uint64 lo, uint64 hi, bytes32[] memory hashes) internal view returns (uint256) {
        uint64[] memory at = registry.points(lo, hi);
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (hashes[i] != honestHash(at[i + 1])) return i;
        }
        return hashes.length;
    }

    function resolveHonestly(uint256 gameId) internal {
        (uint64 lo,) = gameBounds(gameId);
        VMState.State memory pre = honestState(lo);
        SparseMemory.Memory memory m = _memory();
        registry.resolve(gameId, VMState.encode(pre), abi.encodePacked(m.proof(pre.pc), m.proof(pre.pc)));
    }

    /// @dev Plays a whole game; `divergence` > STEPS makes the defender honest; `choices` drive a lying
    ///      challenger when the defender is honest.
    function play(uint256 gameId, uint64 divergence, uint256 choices) internal {
        (uint64 lo, uint64 hi) = gameBounds(gameId);
        while (hi - lo > 1) {
            bytes32[] memory hashes = defenderHashes(lo, hi, divergence);
            vm.prank(CLAIMANT);
            registry.bisect(gameId, hashes);
            uint256 segment;
            if (divergence > STEPS) {
                segment = choices % (hashes.length + 1);
                choices /= hashes.length + 1;
            } else {
                segment = firstDisputed(lo, hi, hashes);
            }
            vm.prank(CHALLENGER);
            registry.select(gameId, segment, hashes);
            (lo, hi) = gameBounds(gameId);
        }
        resolveHonestly(gameId);
    }

    // --- games -----------------------------------------------------------------------------------

    function testFuzz_HonestChallengerBeatsALyingDefenderWhereverTheLieStarts(uint64 divergence) public {
        divergence = uint64(bound(divergence, 1, STEPS));
        uint256 claimId = claimAs(CLAIMANT, lyingFinalState());
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        play(gameId, divergence, 0);
        assertTrue(gameStatus(gameId) == InferenceRegistry.GameStatus.ChallengerWon, "challenger wins");
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GameNotActive.selector, gameId));
        registry.resolve(gameId, "", ""); // nothing moves after the resolution
        assertEq(registry.balances(CHALLENGER), 2 * BOND, "challenger's bond back plus the claim's");
        (, InferenceRegistry.RequestStatus status,,,,,,) = registry.requests(requestId);
        assertTrue(status == InferenceRegistry.RequestStatus.Open, "the request is open again");
    }

    function testFuzz_HonestDefenderBeatsALyingChallenger(uint256 choices) public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        play(gameId, STEPS + 1, choices);
        assertTrue(gameStatus(gameId) == InferenceRegistry.GameStatus.DefenderWon, "defender wins");
        assertEq(registry.balances(CLAIMANT), BOND, "the challenger's bond");
        vm.warp(block.timestamp + WINDOW);
        finalizeHonest(requestId);
        assertEq(registry.balances(CLAIMANT), 2 * BOND + FEE, "plus its own bond and the fee");
    }

    function test_TimeoutOfTheDefender() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        vm.warp(block.timestamp + CLOCK);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClockNotExpired.selector, gameId));
        registry.timeout(gameId);
        vm.warp(block.timestamp + 1);
        registry.timeout(gameId);
        assertTrue(gameStatus(gameId) == InferenceRegistry.GameStatus.ChallengerWon, "silent defender loses");
    }

    function test_AClaimOfZeroStepsCannotStallItsGame() public {
        VMState.State memory lie = honestState(STEPS);
        lie.step = 0;
        uint256 claimId = claimAs(CLAIMANT, lie);
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPhase.selector, gameId));
        registry.bisect(gameId, new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPhase.selector, gameId));
        registry.resolve(gameId, "", "");
        vm.warp(block.timestamp + CLOCK + 1);
        registry.timeout(gameId);
        assertTrue(gameStatus(gameId) == InferenceRegistry.GameStatus.ChallengerWon, "the liar loses on time");
    }

    function test_TimeoutOfTheChallenger() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        (uint64 lo, uint64 hi) = gameBounds(gameId);
        bytes32[] memory hashes = defenderHashes(lo, hi, STEPS + 1);
        vm.prank(CLAIMANT);
        registry.bisect(gameId, hashes);
        vm.warp(block.timestamp + CLOCK + 1);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ClockExpired.selector, gameId));
        registry.select(gameId, 0, hashes);
        registry.timeout(gameId);
        assertTrue(gameStatus(gameId) == InferenceRegistry.GameStatus.DefenderWon, "silent challenger loses");
    }

    function test_SeveralChallengersAndAReclaim() public {
        uint256 lie = claimAs(CLAIMANT, lyingFinalState());
        vm.prank(CHALLENGER);
        uint256 first = registry.challenge{value: BOND}(lie);
        vm.prank(SECOND_CHALLENGER);
        uint256 second = registry.challenge{value: BOND}(lie);
        play(first, STEPS, 0);
        // the second game goes on; its challenger wins too but the claim's bond is already paid out
        vm.warp(block.timestamp + CLOCK + 1);
        registry.timeout(second);
        assertEq(registry.balances(CHALLENGER), 2 * BOND, "first winner");
        assertEq(registry.balances(SECOND_CHALLENGER), BOND, "second winner: its bond back");

        uint256 honest = claimAs(SECOND_CHALLENGER, honestState(STEPS));
        bytes memory finalState = VMState.encode(honestState(STEPS));
        bytes32[4] memory s = siblings();
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ChallengeWindowOpen.selector, honest));
        registry.finalize(requestId, finalState, "", s);
        vm.warp(block.timestamp + WINDOW);
        finalizeHonest(requestId);
        (bool isFinal, uint8 exitCode, bytes memory output) = registry.resultOf(requestId);
        assertTrue(isFinal && exitCode == 0 && output.length == 0, "final result");
    }

    function test_FinalizeWaitsForOpenGames() public {
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        vm.warp(block.timestamp + WINDOW);
        bytes memory finalState = VMState.encode(honestState(STEPS));
        bytes32[4] memory s = siblings();
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GamesStillOpen.selector, claimId, 1));
        registry.finalize(requestId, finalState, "", s);
        vm.prank(SECOND_CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.ChallengeWindowClosed.selector, claimId));
        registry.challenge{value: BOND}(claimId);
        play(gameId, STEPS + 1, 3);
        finalizeHonest(requestId);
    }

    function test_TheConsumerIsCalledBack() public {
        Consumer consumer = new Consumer();
        uint256 id = registry.requestInference(1, 1, "", address(consumer));
        vm.prank(CLAIMANT);
        registry.submitClaim{value: BOND}(id, VMState.encode(honestState(STEPS)), "", siblings());
        vm.warp(block.timestamp + WINDOW);
        finalizeHonest(id);
        assertEq(consumer.lastRequest(), id, "callback");
    }

    // --- illegal moves ---------------------------------------------------------------------------

    function test_ClaimsMustBeExitedAndCarryTheirOutput() public {
        vm.prank(CLAIMANT);
        vm.expectRevert(InferenceRegistry.StateNotExited.selector);
        registry.submitClaim{value: BOND}(requestId, VMState.encode(honestState(3)), "", siblings());
        bytes memory finalState = VMState.encode(honestState(STEPS));
        bytes32[4] memory s = siblings();
        vm.prank(CLAIMANT);
        vm.expectRevert(InferenceRegistry.OutputNotInState.selector);
        registry.submitClaim{value: BOND}(requestId, finalState, "x", s);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPayment.selector, BOND, 1));
        registry.submitClaim{value: 1}(requestId, finalState, "", s);
        claimAs(CLAIMANT, honestState(STEPS));
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.RequestNotOpen.selector, requestId));
        registry.submitClaim{value: BOND}(requestId, finalState, "", s);
    }

    function test_IllegalMovesRevert() public {
        uint256 claimId = claimAs(CLAIMANT, lyingFinalState());
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.AlreadyChallenged.selector, claimId, CHALLENGER));
        registry.challenge{value: BOND}(claimId);
        (uint64 lo, uint64 hi) = gameBounds(gameId);
        bytes32[] memory hashes = defenderHashes(lo, hi, STEPS + 1);

        vm.prank(CHALLENGER); // wrong sender
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NotYourTurn.selector, gameId, CHALLENGER));
        registry.bisect(gameId, hashes);
        vm.prank(CHALLENGER); // out of turn
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NotYourTurn.selector, gameId, CHALLENGER));
        registry.select(gameId, 0, hashes);
        vm.prank(CLAIMANT);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongHashCount.selector, ARITY - 1, 1));
        registry.bisect(gameId, new bytes32[](1));
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.WrongPhase.selector, gameId));
        registry.resolve(gameId, "", "");

        vm.prank(CLAIMANT);
        registry.bisect(gameId, hashes);
        vm.prank(CLAIMANT); // twice in a row
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.NotYourTurn.selector, gameId, CLAIMANT));
        registry.bisect(gameId, hashes);
        vm.prank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.SegmentOutOfRange.selector, ARITY, ARITY));
        registry.select(gameId, ARITY, hashes);
        hashes[0] = bytes32(uint256(1));
        vm.prank(CHALLENGER);
        vm.expectRevert(InferenceRegistry.BisectionMismatch.selector);
        registry.select(gameId, 0, hashes);

        vm.warp(block.timestamp + CLOCK + 1);
        registry.timeout(gameId);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.GameNotActive.selector, gameId));
        registry.timeout(gameId);
        vm.expectRevert(abi.encodeWithSelector(InferenceRegistry.UnknownGame.selector, 99));
        registry.timeout(99);
    }

    function test_ResolutionNeedsTheAgreedPreState() public {
        uint256 claimId = claimAs(CLAIMANT, lyingFinalState());
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        (uint64 lo, uint64 hi) = gameBounds(gameId);
        while (hi - lo > 1) {
            bytes32[] memory hashes = defenderHashes(lo, hi, STEPS);
            uint256 segment = firstDisputed(lo, hi, hashes);
            vm.prank(CLAIMANT);
            registry.bisect(gameId, hashes);
            vm.prank(CHALLENGER);
            registry.select(gameId, segment, hashes);
            (lo, hi) = gameBounds(gameId);
        }
        bytes memory wrong = VMState.encode(honestState(lo + 1));
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRegistry.PreStateMismatch.selector, honestHash(lo), keccak256(wrong))
        );
        registry.resolve(gameId, wrong, "");
    }

    function test_WithdrawOnceAndNotReentrantly() public {
        vm.warp(block.timestamp + 1);
        uint256 claimId = claimAs(CLAIMANT, honestState(STEPS));
        vm.prank(CHALLENGER);
        uint256 gameId = registry.challenge{value: BOND}(claimId);
        vm.warp(block.timestamp + CLOCK + 1);
        registry.timeout(gameId); // the claimant did not move: the challenger wins
        uint256 before = CHALLENGER.balance;
        vm.prank(CHALLENGER);
        registry.withdraw();
        assertEq(CHALLENGER.balance - before, 2 * BOND, "paid");
        vm.prank(CHALLENGER);
        vm.expectRevert(InferenceRegistry.NothingToWithdraw.selector);
        registry.withdraw();

        Reentrant attacker = new Reentrant(registry);
        vm.deal(address(attacker), BOND);
        attacker.claim{value: BOND}(requestId, VMState.encode(honestState(STEPS)), "", siblings());
        vm.warp(block.timestamp + WINDOW);
        finalizeHonest(requestId);
        vm.expectRevert(InferenceRegistry.TransferFailed.selector);
        attacker.withdraw();
        assertEq(registry.balances(address(attacker)), BOND + FEE, "nothing left the contract");
    }
}
