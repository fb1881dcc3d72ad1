// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "../../src/InferenceLayout.sol";
import {InferenceRegistry, ResultKind} from "../../src/InferenceRegistry.sol";
import {MIPS} from "../../src/MIPS.sol";
import {Proofs} from "../../src/Proofs.sol";
import {VMState} from "../../src/VMState.sol";
import {SparseMemory} from "./SparseMemory.sol";
import {TestBase} from "./TestBase.sol";

/// @notice The registry on real traces whose states and step proofs the tests build, so every game ends in
///         a real MIPS.step. Four programs share one program region:
///         - at EXIT_ENTRY: NOPS no-ops, `addiu v0, zero, 4246`, `syscall` (exit_group(0)), STEPS steps;
///         - at LOOP_ENTRY: `beq zero, zero, -1` and a no-op in its delay slot, for ever;
///         - at MALFORMED_ENTRY and TOO_LARGE_ENTRY, WRITER_STEPS steps: `lui t0, 0x2000`,
///           `addiu t1, zero, imm`, `sw t1, offset(t0)`, `addiu v0, zero, 4246`, `syscall`. The first leaves
///           a zero-length output with a nonzero byte after it (a malformed output region), the second writes
///           the length prefix 0xFFFFFFFF (an output too large).
///         `truth` says which program's run the generic helpers (`trueState`, `defenderHashes`, `play`,
///         `finalizeTruth`) play; it is the exiting program unless a test says otherwise.
abstract contract RegistryFixture is TestBase {
    using SparseMemory for SparseMemory.Memory;

    /// @dev The programs whose runs the helpers know.
    enum Run {
        Exit,
        Loop,
        Malformed,
        TooLarge
    }

    uint32 internal constant EXIT_ENTRY = 0x1000;
    uint32 internal constant LOOP_ENTRY = 0x2000;
    uint256 internal constant NOPS = 21;
    uint64 internal constant STEPS = uint64(NOPS + 2);
    uint32 internal constant ADDIU_V0 = 0x24021096; // addiu v0, zero, 4246
    uint32 internal constant SYSCALL = 0x0000000C;
    uint32 internal constant BRANCH_TO_SELF = 0x1000FFFF; // beq zero, zero, -1
    uint256 internal constant V0 = 2;
    uint32 internal constant EXIT_GROUP = 4246;

    uint32 internal constant MALFORMED_ENTRY = 0x3000;
    uint32 internal constant TOO_LARGE_ENTRY = 0x4000;
    uint64 internal constant WRITER_STEPS = 5;
    uint64 internal constant WRITER_STORE_STEP = 2; // the `sw` executes from this step's state
    uint32 internal constant OUTPUT_REGION = 0x2000_0000;
    uint32 internal constant LUI_T0_OUTPUT = 0x3C082000; // lui t0, 0x2000
    uint32 internal constant ADDIU_T1_ONE = 0x24090001; // addiu t1, zero, 1
    uint32 internal constant ADDIU_T1_MINUS_ONE = 0x2409FFFF; // addiu t1, zero, -1
    uint32 internal constant SW_T1_TO_T0 = 0xAD090000; // sw t1, 0(t0); the offset is or-ed in
    uint32 internal constant MALFORMED_OFFSET = 100; // a nonzero word in leaf 3, after an empty output
    uint256 internal constant T0 = 8;
    uint256 internal constant T1 = 9;
    uint256 internal constant REGION_SIBLINGS = 4;

    uint256 internal constant ARITY = 4;
    uint256 internal constant CLAIM_BOND = 1 ether;
    uint256 internal constant CHALLENGE_BOND = 0.8 ether;
    uint256 internal constant BURN_BPS = 5_000;
    uint256 internal constant WINDOW = 1 hours;
    uint256 internal constant CLOCK = 1 days;
    uint256 internal constant MAX_STEP_LIMIT = 1_000_000;
    uint256 internal constant REQUEST_TIMEOUT = 7 days;
    uint256 internal constant CALLBACK_GAS = 100_000;
    uint256 internal constant MOVE_REFUND = 0.01 ether;
    uint256 internal constant FEE = 0.5 ether;
    uint64 internal constant STEP_LIMIT = 1_000;
    uint64 internal constant LOOP_LIMIT = 37; // odd, so the looping state at the limit is mid-cycle

    address internal constant REQUESTER = address(0x2E01);
    address internal constant CLAIMANT = address(0xC1A1);
    address internal constant LIAR = address(0x1A2);
    address internal constant CHALLENGER = address(0xC4A1);
    address internal constant SECOND_CHALLENGER = address(0xC4A2);

    MIPS internal mips;
    Proofs internal proofs;
    InferenceRegistry internal registry;
    SparseMemory.Memory internal program;
    bytes32 internal programRoot;
    uint256 internal exitProgramId;
    uint256 internal loopProgramId;
    uint256 internal malformedProgramId;
    uint256 internal tooLargeProgramId;
    /// @dev The run the generic helpers play.
    Run internal truth;
    bytes32 internal initialMemRoot;
    /// @dev The memory roots of the writers' runs after their store.
    bytes32 internal malformedMemRoot;
    bytes32 internal tooLargeMemRoot;
    uint256 internal modelId;
    uint256 internal requestId;
    /// @dev Ether each actor was given and has paid into the registry, so `received` can tell what came back.
    mapping(address => uint256) internal funded;
    mapping(address => uint256) internal deposited;

    function setUp() public virtual {
        mips = new MIPS();
        proofs = new Proofs();
        registry = new InferenceRegistry(mips, proofs, parameters());
        SparseMemory.Memory memory m = SparseMemory.empty();
        m = m.withWord(EXIT_ENTRY + uint32(4 * NOPS), ADDIU_V0);
        m = m.withWord(EXIT_ENTRY + uint32(4 * NOPS + 4), SYSCALL);
        m = m.withWord(LOOP_ENTRY, BRANCH_TO_SELF);
        m = _withWriter(m, MALFORMED_ENTRY, ADDIU_T1_ONE, MALFORMED_OFFSET);
        m = _withWriter(m, TOO_LARGE_ENTRY, ADDIU_T1_MINUS_ONE, 0);
        program.addrs = m.addrs;
        program.leaves = m.leaves;
        programRoot = m.subtreeRoot(InferenceLayout.REGION_HEIGHT, 0);
        initialMemRoot = m.root();
        malformedMemRoot = _writtenMemory(Run.Malformed).root();
        tooLargeMemRoot = _writtenMemory(Run.TooLarge).root();
        exitProgramId = registry.registerProgram(programRoot, EXIT_ENTRY, InferenceRegistry.ProgramKind.WholeRun);
        loopProgramId = registry.registerProgram(programRoot, LOOP_ENTRY, InferenceRegistry.ProgramKind.WholeRun);
        malformedProgramId = registry.registerProgram(programRoot, MALFORMED_ENTRY, InferenceRegistry.ProgramKind.WholeRun);
        tooLargeProgramId = registry.registerProgram(programRoot, TOO_LARGE_ENTRY, InferenceRegistry.ProgramKind.WholeRun);
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
            callbackGasLimit: CALLBACK_GAS,
            moveRefund: MOVE_REFUND
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

    function _withWriter(SparseMemory.Memory memory m, uint32 entry, uint32 setValue, uint32 offset)
        private
        pure
        returns (SparseMemory.Memory memory)
    {
        m = m.withWord(entry, LUI_T0_OUTPUT);
        m = m.withWord(entry + 4, setValue);
        m = m.withWord(entry + 8, SW_T1_TO_T0 | offset);
        m = m.withWord(entry + 12, ADDIU_V0);
        return m.withWord(entry + 16, SYSCALL);
    }

    /// @dev The memory of a writer's run after its store.
    function _writtenMemory(Run run) internal view returns (SparseMemory.Memory memory m) {
        m = _memory();
        if (run == Run.Malformed) m = m.withWord(OUTPUT_REGION + MALFORMED_OFFSET, 1);
        if (run == Run.TooLarge) m = m.withWord(OUTPUT_REGION, type(uint32).max);
    }

    function _initial(uint32 entry) private view returns (VMState.State memory s) {
        s.memRoot = initialMemRoot;
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

    /// @dev A writer's state after `step` steps (its final state from WRITER_STEPS on).
    function writerState(Run run, uint64 step) internal view returns (VMState.State memory s) {
        s = _initial(run == Run.Malformed ? MALFORMED_ENTRY : TOO_LARGE_ENTRY);
        uint64 executed = step > WRITER_STEPS ? WRITER_STEPS : step;
        s.step = executed;
        s.pc += uint32(4 * (executed == WRITER_STEPS ? WRITER_STEPS - 1 : executed));
        s.nextPC = s.pc + 4;
        if (executed > 0) s.registers[T0] = OUTPUT_REGION;
        if (executed > 1) s.registers[T1] = run == Run.Malformed ? 1 : type(uint32).max;
        if (executed > WRITER_STORE_STEP) s.memRoot = run == Run.Malformed ? malformedMemRoot : tooLargeMemRoot;
        if (executed > 3) s.registers[V0] = EXIT_GROUP;
        if (executed == WRITER_STEPS) s.exited = true;
    }

    /// @dev The state of the run `truth` after `step` steps.
    function trueState(uint64 step) internal view returns (VMState.State memory) {
        if (truth == Run.Exit) return honestState(step);
        if (truth == Run.Loop) return loopState(step);
        return writerState(truth, step);
    }

    /// @dev The final state of the run `truth` (for the looping one: at LOOP_LIMIT).
    function trueFinalState() internal view returns (VMState.State memory) {
        return trueState(trueSteps());
    }

    function trueSteps() internal view returns (uint64) {
        if (truth == Run.Exit) return STEPS;
        if (truth == Run.Loop) return LOOP_LIMIT;
        return WRITER_STEPS;
    }

    /// @dev The program of the run `truth`, and the step limit its requests ask for.
    function trueProgram() internal view returns (uint256 programId, uint64 stepLimit) {
        if (truth == Run.Exit) return (exitProgramId, STEP_LIMIT);
        if (truth == Run.Loop) return (loopProgramId, LOOP_LIMIT);
        return (truth == Run.Malformed ? malformedProgramId : tooLargeProgramId, STEP_LIMIT);
    }

    /// @dev The kind of the run `truth`'s result.
    function trueKind() internal view returns (ResultKind) {
        if (truth == Run.Exit) return ResultKind.Output;
        if (truth == Run.Loop) return ResultKind.StepLimitReached;
        return truth == Run.Malformed ? ResultKind.MalformedOutput : ResultKind.OutputTooLarge;
    }

    /// @dev The memory of the run `truth` after `step` steps.
    function trueMemory(uint64 step) internal view returns (SparseMemory.Memory memory) {
        if ((truth == Run.Malformed || truth == Run.TooLarge) && step > WRITER_STORE_STEP) {
            return _writtenMemory(truth);
        }
        return _memory();
    }

    function trueHash(uint64 step) internal view returns (bytes32) {
        return VMState.hash(trueState(step));
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
        registry.commitClaim(id, registry.commitmentOf(id, VMState.hash(finalState), claimant));
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

    /// @dev Finalize a claim of the true final state of the run `truth`, with the call its kind needs.
    function finalizeTruth(uint256 claimId) internal {
        if (truth == Run.Exit || truth == Run.Loop) {
            finalizeWith(claimId, trueFinalState());
        } else {
            uint32 second = truth == Run.Malformed ? OUTPUT_REGION + MALFORMED_OFFSET : OUTPUT_REGION;
            registry.finalizeMalformed(
                claimId, VMState.encode(trueFinalState()), outputProof(_writtenMemory(truth), second)
            );
        }
    }

    /// @dev The output proof of a memory: its output region's first leaf and the leaf holding `second`.
    function outputProof(SparseMemory.Memory memory m, uint32 second)
        internal
        pure
        returns (Proofs.OutputProof memory proof)
    {
        bytes memory first = m.proof(OUTPUT_REGION);
        proof.first = leafProof(first, 0);
        proof.second = leafProof(m.proof(second), (second - OUTPUT_REGION) / 32);
        for (uint256 i = 0; i < REGION_SIBLINGS; ++i) {
            proof.regionSiblings[i] = _wordAt(first, 1 + InferenceLayout.REGION_HEIGHT + i);
        }
    }

    /// @dev A leaf proof in the output region from an 896-byte memory proof (leaf, then 27 siblings).
    function leafProof(bytes memory memoryProof, uint256 index)
        internal
        pure
        returns (InferenceLayout.LeafProof memory proof)
    {
        proof.leaf = _wordAt(memoryProof, 0);
        proof.index = index;
        for (uint256 i = 0; i < InferenceLayout.REGION_HEIGHT; ++i) {
            proof.siblings[i] = _wordAt(memoryProof, 1 + i);
        }
    }

    function _wordAt(bytes memory data, uint256 index) private pure returns (bytes32 word) {
        assembly ("memory-safe") {
            word := mload(add(add(data, 32), mul(index, 32)))
        }
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
            hashes[i] = step < divergence ? trueHash(step) : keccak256(abi.encode("lie", step));
        }
    }

    /// @dev The first segment whose end the honest challenger disagrees with (the last one, whose end is
    ///      the disputed hash itself, if it agrees with every interior hash).
    function firstDisputed(uint64 lo, uint64 hi, bytes32[] memory hashes) internal view returns (uint256) {
        uint64[] memory steps = registry.points(lo, hi);
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (hashes[i] != trueHash(steps[i + 1])) return i;
        }
        return hashes.length;
    }

    function resolveHonestly(uint256 gameId) internal {
        resolveHonestlyAs(address(0), gameId);
    }

    /// @dev `resolveHonestly` sent by `sender` (by this contract if it is the zero address).
    function resolveHonestlyAs(address sender, uint256 gameId) internal {
        uint64 lo = game(gameId).lo;
        VMState.State memory pre = trueState(lo);
        SparseMemory.Memory memory m = trueMemory(lo);
        uint32 data = pre.pc;
        if ((truth == Run.Malformed || truth == Run.TooLarge) && lo == WRITER_STORE_STEP) {
            data = OUTPUT_REGION + (truth == Run.Malformed ? MALFORMED_OFFSET : 0); // the store's word
        }
        bytes memory stateData = VMState.encode(pre);
        bytes memory proof = abi.encodePacked(m.proof(pre.pc), m.proof(data));
        if (sender != address(0)) vm.prank(sender);
        registry.resolve(gameId, stateData, proof);
    }

    /// @dev One round: the defender bisects (lying from `divergence` on), the challenger answers honestly,
    ///      or by `choices` when the defender is honest (divergence > the true run's steps). Returns the
    ///      remaining choices.
    function playRound(uint256 gameId, address defender, address challenger, uint64 divergence, uint256 choices)
        internal
        returns (uint256)
    {
        InferenceRegistry.Game memory g = game(gameId);
        bytes32[] memory hashes = defenderHashes(g.lo, g.hi, divergence);
        vm.prank(defender);
        registry.bisect(gameId, hashes);
        uint256 segment;
        if (divergence > trueSteps()) {
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
    function play(uint256 gameId, address defender, address challenger, uint64 divergence, uint256 choices) internal {
        while (game(gameId).hi - game(gameId).lo > 1) {
            choices = playRound(gameId, defender, challenger, divergence, choices);
        }
        resolveHonestly(gameId);
    }

    function isFinal(uint256 id) internal view returns (bool final_) {
        (final_,) = registry.resultOf(id);
    }
}
