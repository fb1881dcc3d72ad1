// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "../../src/InferenceLayout.sol";
import {InferenceRegistry} from "../../src/InferenceRegistry.sol";
import {MIPS} from "../../src/MIPS.sol";
import {VMState} from "../../src/VMState.sol";
import {SparseMemory} from "./SparseMemory.sol";
import {TestBase} from "./TestBase.sol";

/// @notice The registry on real traces whose states and step proofs the tests build, so every game ends in
///         a real MIPS.step. Two programs share one program region:
///         - at EXIT_ENTRY: NOPS no-ops, `addiu v0, zero, 4246`, `syscall` (exit_group(0)), STEPS steps;
///         - at LOOP_ENTRY: `beq zero, zero, -1` and a no-op in its delay slot, for ever.
abstract contract RegistryFixture is TestBase {
    using SparseMemory for SparseMemory.Memory;

    uint32 internal constant EXIT_ENTRY = 0x1000;
    uint32 internal constant LOOP_ENTRY = 0x2000;
    uint256 internal constant NOPS = 21;
    uint64 internal constant STEPS = uint64(NOPS + 2);
    uint32 internal constant ADDIU_V0 = 0x24021096; // addiu v0, zero, 4246
    uint32 internal constant SYSCALL = 0x0000000C;
    uint32 internal constant BRANCH_TO_SELF = 0x1000FFFF; // beq zero, zero, -1
    uint256 internal constant V0 = 2;
    uint32 internal constant EXIT_GROUP = 4246;

    uint256 internal constant ARITY = 4;
    uint256 internal constant CLAIM_BOND = 1 ether;
    uint256 internal constant CHALLENGE_BOND = 0.8 ether;
    uint256 internal constant BURN_BPS = 5_000;
    uint256 internal constant WINDOW = 1 hours;
    uint256 internal constant CLOCK = 1 days;
    uint256 internal constant MAX_STEP_LIMIT = 1_000_000;
    uint256 internal constant REQUEST_TIMEOUT = 7 days;
    uint256 internal constant CALLBACK_GAS = 100_000;
    uint256 internal constant FEE = 0.5 ether;
    uint64 internal constant STEP_LIMIT = 1_000;
    uint64 internal constant LOOP_LIMIT = 37; // odd, so the looping state at the limit is mid-cycle

    address internal constant REQUESTER = address(0x2E01);
    address internal constant CLAIMANT = address(0xC1A1);
    address internal constant LIAR = address(0x1A2);
    address internal constant CHALLENGER = address(0xC4A1);
    address internal constant SECOND_CHALLENGER = address(0xC4A2);

    MIPS internal mips;
    InferenceRegistry internal registry;
    SparseMemory.Memory internal program;
    bytes32 internal programRoot;
    uint256 internal exitProgramId;
    uint256 internal loopProgramId;
    uint256 internal modelId;
    uint256 internal requestId;
    /// @dev Ether each actor was given and has paid into the registry, so `received` can tell what came back.
    mapping(address => uint256) internal funded;
    mapping(address => uint256) internal deposited;

    function setUp() public virtual {
        mips = new MIPS();
        registry = new InferenceRegistry(mips, parameters());
        SparseMemory.Memory memory m = SparseMemory.empty();
        m = m.withWord(EXIT_ENTRY + uint32(4 * NOPS), ADDIU_V0);
        m = m.withWord(EXIT_ENTRY + uint32(4 * NOPS + 4), SYSCALL);
        m = m.withWord(LOOP_ENTRY, BRANCH_TO_SELF);
        program.addrs = m.addrs;
        program.leaves = m.leaves;
        programRoot = m.subtreeRoot(InferenceLayout.REGION_HEIGHT, 0);
        exitProgramId = registry.registerProgram(programRoot, EXIT_ENTRY);
        loopProgramId = registry.registerProgram(programRoot, LOOP_ENTRY);
        modelId = registry.registerModel(InferenceLayout.zeroRoot(25), keccak256(""), "empty");
        fund(REQUESTER, 100 ether);
        requestId = request(exitProgramId, STEP_LIMIT);
        fund(CLAIMANT, 100 ether);
        fund(LIAR, 100 ether);
        fund(CHALLENGER, 100 ether);
        fund(SECOND_CHALLENGER, 100 ether);
    }

    function fund(address account, uint256 amount) internal {
        vm.deal(account, amount);
        funded[account] = amount;
        deposited[account] = 0;
    }

    /// @dev Everything the registry has given `account`: paid out directly (finalize), credited, withdrawn.
    ///      (Test accounts pay no gas.)
    function received(address account) internal view returns (uint256) {
        return registry.balances(account) + account.balance + deposited[account] - funded[account];
    }

    function parameters() internal pure virtual returns (InferenceRegistry.Parameters memory) {
        return InferenceRegistry.Parameters({
            arity: ARITY,
            claimBond: CLAIM_BOND,
            challengeBond: CHALLENGE_BOND,
            burnShareBps: BURN_BPS,
            challengeWindow: WINDOW,
            clockBudget: CLOCK,
            maxStepLimit: MAX_STEP_LIMIT,
            requestTimeout: REQUEST_TIMEOUT,
            callbackGasLimit: CALLBACK_GAS
        });
    }

    function request(uint256 programId, uint64 stepLimit) internal returns (uint256) {
        deposited[REQUESTER] += FEE;
        vm.prank(REQUESTER);
        return registry.requestInference{value: FEE}(programId, modelId, "", address(0), stepLimit);
    }

    // --- the honest traces ------------------------------------------------------------------------

    function _memory() internal view returns (SparseMemory.Memory memory m) {
        m.addrs = program.addrs;
        m.leaves = program.leaves;
    }

    function _initial(uint32 entry) private view returns (VMState.State memory s) {
        s.memRoot = _memory().root();
        s.pc = entry;
        s.nextPC = entry + 4;
        s.heap = InferenceLayout.HEAP_START;
        s.registers[InferenceLayout.STACK_POINTER] = InferenceLayout.STACK_TOP;
    }

    /// @dev The exiting program's state after `step` steps (its final state from STEPS on).
    function honestState(uint64 step) internal view returns (VMState.State memory s) {
        s = _initial(EXIT_ENTRY);
        uint64 executed = step > STEPS ? STEPS : step;
        s.step = executed;
        s.pc = EXIT_ENTRY + uint32(4 * (executed > NOPS + 1 ? NOPS + 1 : executed));
        s.nextPC = s.pc + 4;
        if (executed > NOPS) s.registers[V0] = EXIT_GROUP;
        if (executed == STEPS) s.exited = true;
    }

    /// @dev The looping program's state after `step` steps: it alternates between the branch and its slot.
    function loopState(uint64 step) internal view returns (VMState.State memory s) {
        s = _initial(LOOP_ENTRY);
        s.step = step;
        if (step % 2 == 1) (s.pc, s.nextPC) = (LOOP_ENTRY + 4, LOOP_ENTRY);
    }

    function honestHash(uint64 step) internal view returns (bytes32) {
        return VMState.hash(honestState(step));
    }

    function lyingFinalState() internal view returns (VMState.State memory s) {
        s = honestState(STEPS);
        s.exitCode = 7; // a different result of the same run
    }

    function siblings() internal view returns (bytes32[4] memory s) {
        bytes32 zero23 = InferenceLayout.zeroRoot(23);
        s = [
            zero23,
            keccak256(abi.encodePacked(programRoot, zero23)),
            InferenceLayout.zeroRoot(25),
            InferenceLayout.zeroRoot(26)
        ];
    }

    // --- claims ------------------------------------------------------------------------------------

    function commit(address claimant, uint256 id, VMState.State memory finalState) internal {
        vm.prank(claimant);
        registry.commitClaim(registry.commitmentOf(id, VMState.hash(finalState), claimant));
    }

    /// @dev Commit, let a block pass, reveal.
    function claimFor(address claimant, uint256 id, VMState.State memory finalState) internal returns (uint256) {
        commit(claimant, id, finalState);
        vm.roll(blockNumber() + 1);
        return reveal(claimant, id, finalState);
    }

    function reveal(address claimant, uint256 id, VMState.State memory finalState) internal returns (uint256) {
        deposited[claimant] += CLAIM_BOND;
        vm.prank(claimant);
        return registry.submitClaim{value: CLAIM_BOND}(id, VMState.encode(finalState));
    }

    function claimAs(address claimant, VMState.State memory finalState) internal returns (uint256) {
        return claimFor(claimant, requestId, finalState);
    }

    function finalizeWith(uint256 claimId, VMState.State memory finalState) internal {
        registry.finalize(claimId, VMState.encode(finalState), "", siblings());
    }

    function challengeAs(address challenger, uint256 claimId) internal returns (uint256) {
        deposited[challenger] += CHALLENGE_BOND;
        vm.prank(challenger);
        return registry.challenge{value: CHALLENGE_BOND}(claimId);
    }

    // --- playing -----------------------------------------------------------------------------------

    function game(uint256 gameId) internal view returns (InferenceRegistry.Game memory) {
        return registry.getGame(gameId);
    }

    function claimStatus(uint256 claimId) internal view returns (InferenceRegistry.ClaimStatus) {
        return registry.getClaim(claimId).status;
    }

    /// @dev Defender hashes for the interior points: honest before `divergence`, made up from it on.
    function defenderHashes(uint64 lo, uint64 hi, uint64 divergence) internal view returns (bytes32[] memory hashes) {
        uint64[] memory steps = registry.points(lo, hi);
        hashes = new bytes32[](steps.length - 2);
        for (uint256 i = 0; i < hashes.length; ++i) {
            uint64 step = steps[i + 1];
            hashes[i] = step < divergence ? honestHash(step) : keccak256(abi.encode("lie", step));
        }
    }

    /// @dev The first segment whose end the honest challenger disagrees with (the last one, whose end is
    ///      the disputed hash itself, if it agrees with every interior hash).
    function firstDisputed(uint64 lo, uint64 hi, bytes32[] memory hashes) internal view returns (uint256) {
        uint64[] memory steps = registry.points(lo, hi);
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (hashes[i] != honestHash(steps[i + 1])) return i;
        }
        return hashes.length;
    }

    function resolveHonestly(uint256 gameId) internal {
        VMState.State memory pre = honestState(game(gameId).lo);
        SparseMemory.Memory memory m = _memory();
        registry.resolve(gameId, VMState.encode(pre), abi.encodePacked(m.proof(pre.pc), m.proof(pre.pc)));
    }

    /// @dev One round: the defender bisects (lying from `divergence` on), the challenger answers honestly,
    ///      or by `choices` when the defender is honest (divergence > STEPS). Returns the remaining choices.
    function playRound(uint256 gameId, address defender, address challenger, uint64 divergence, uint256 choices)
        internal
        returns (uint256)
    {
        InferenceRegistry.Game memory g = game(gameId);
        bytes32[] memory hashes = defenderHashes(g.lo, g.hi, divergence);
        vm.prank(defender);
        registry.bisect(gameId, hashes);
        uint256 segment;
        if (divergence > STEPS) {
            segment = choices % (hashes.length + 1);
            choices /= hashes.length + 1;
        } else {
            segment = firstDisputed(g.lo, g.hi, hashes);
        }
        vm.prank(challenger);
        registry.select(gameId, segment, hashes);
        return choices;
    }

    /// @dev Plays a whole game and resolves it.
    function play(uint256 gameId, address defender, address challenger, uint64 divergence, uint256 choices)
        internal
    {
        while (game(gameId).hi - game(gameId).lo > 1) {
            choices = playRound(gameId, defender, challenger, divergence, choices);
        }
        resolveHonestly(gameId);
    }

    function isFinal(uint256 id) internal view returns (bool final_) {
        (final_,) = registry.resultOf(id);
    }
}
