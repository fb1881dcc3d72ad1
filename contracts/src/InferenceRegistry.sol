// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "./InferenceLayout.sol";
import {MIPS} from "./MIPS.sol";
import {Proofs} from "./Proofs.sol";
import {VMState} from "./VMState.sol";

/// @notice What a final result is. An exited run's output region (a big-endian u32 length L, then bytes) gives
///         exactly one of Output, MalformedOutput and OutputTooLarge; a run still going at the request's step
///         limit gives StepLimitReached. Only Output carries bytes.
enum ResultKind {
    None, // no result (yet)
    Output, // exited; L <= MAX_OUTPUT_BYTES and every byte of the region after the output is zero
    StepLimitReached, // not exited at exactly the request's step limit
    MalformedOutput, // exited; L <= MAX_OUTPUT_BYTES but a byte of the region after the output is nonzero
    OutputTooLarge // exited; L > MAX_OUTPUT_BYTES
}

/// @notice A contract that wants to hear about its finalized inference results.
interface IInferenceConsumer {
    /// @notice Called once, when the result of `requestId` becomes final, with exactly the registry's
    ///         `callbackGasLimit` of gas (the registry refuses to finalize with less).
    /// @param kind What the result is; `output` is empty unless it is ResultKind.Output.
    /// @param exitCode The run's exit code (0 when the step limit was reached).
    /// @param output The output bytes, at most MAX_OUTPUT_BYTES.
    function onInferenceResult(uint256 requestId, ResultKind kind, uint8 exitCode, bytes calldata output) external;
}

/// @title InferenceRegistry
/// @notice Optimistic ML inference. Programs and models are registered by their memory roots; a request
///         carries its input, a fee and a step limit. Claimants commit to a result, then reveal it with a
///         bond; several claims of one request may be live at once, each with its own challenge window.
///         Anyone may open a dispute game against a claim: k-ary dissection of the run down to one step that
///         MIPS.sol executes, with a chess clock per side. A program registered as GraphNodes plays the linked
///         two-phase game instead (docs/two-phase.md, Proofs.sol): its claims commit to the values of a
///         graph run, computed natively, and a dispute narrows them to one node, linked to a VM run of the node
///         program that is then played as above. The first claim to outlive its window with no open
///         game becomes the request's result, and the fee goes to whoever committed to that result first.
///         A challenger who proves a claim wrong gets its bond back and a refund per move it made, from the
///         claim's bond; the rest of that bond is burned, so a party never wins back its own lost bond and a
///         copier earns no more than its own moves cost. `finalize` pays its claimant directly; every other
///         payment is a credit pulled with `withdraw`. docs/contracts.md has the protocol and why each rule
///         is there.
contract InferenceRegistry {
    // --- types -------------------------------------------------------------------------------

    /// @notice Deployment parameters, validated by the constructor.
    struct Parameters {
        uint256 arity; // k: segments per dissection round
        uint256 claimBond;
        uint256 challengeBond;
        uint256 burnShareBps; // share of a forfeited bond that is burned, in basis points
        uint256 challengeWindow; // seconds after a claim during which it may be challenged
        uint256 clockBudget; // seconds each side of a game may spend on its moves
        uint256 maxStepLimit; // the largest step limit a request may ask for
        uint256 requestTimeout; // seconds after which a request nobody serves may be cancelled
        uint256 callbackGasLimit;
        uint256 moveRefund; // wei refunded per move to a challenger who proves a claim wrong
    }

    /// @notice Which game a program's requests play.
    enum ProgramKind {
        WholeRun, // a claim is the final state of the whole run in the VM
        GraphNodes // the node program: a claim is the root of a graph run's values (docs/two-phase.md)
    }

    struct Program {
        bytes32 root; // P
        uint32 entry;
        ProgramKind kind;
    }

    struct Model {
        bytes32 root; // M
        bytes32 fileHash;
        string uri;
    }

    enum RequestStatus {
        None,
        Open, // waiting for a claim to become final
        Finalized,
        Cancelled // nobody served it before its deadline (or no claim could end it): the fee went back
    }

    /// @dev Ids and counters are narrowed so the fields that change together share a slot; the result's
    ///      fields live beside the status they are written with, and the latest claim's time beside the
    ///      claim count it is written with.
    struct Request {
        address requester;
        RequestStatus status;
        uint32 liveClaims;
        ResultKind kind; // of the final result
        uint8 exitCode; // of the final result
        uint40 lastClaimAt; // when the latest claim was revealed (0 before any)
        address consumer; // optional callback target
        uint64 deadline; // from then on, with no live claim, the request may be cancelled
        uint128 fee;
        uint64 stepLimit;
        uint64 finalClaim; // the claim whose result is final, 0 before
        uint64 programId;
        uint64 modelId;
        bytes32 startStateHash;
        bytes32 outputHash; // keccak256 of the final result's output
    }

    /// @notice A final result. The output itself is in ResultFinalized and the consumer's callback; a
    ///         contract reading it later checks bytes it is given against `outputHash`.
    struct Result {
        ResultKind kind;
        uint8 exitCode;
        bytes32 outputHash; // keccak256 of the output (of no bytes unless kind is Output)
    }

    /// @notice The claim that committed first to a result of a request: it earns the fee if that result wins.
    struct Lead {
        uint64 claimId;
        uint64 committedAt; // block
    }

    enum ClaimStatus {
        None,
        Live,
        Rejected, // lost a game
        Finalized, // its result is the request's result
        Retired, // another claim with the same result became final first: bond returned
        Forfeited, // another result became final and nobody proved this one wrong: bond burned
        Released // its request was cancelled with the claim live (nobody proved it wrong): bond returned
    }

    /// @dev Three slots: a claim is paid for by its claimant on every request, so it stores only what the
    ///      games and `finalize` need; the output is proven again from the final state when it is finalized.
    ///      `refunded` fits 96 bits because the constructor bounds the claim bond.
    struct Claim {
        address claimant;
        uint64 submittedAt;
        ClaimStatus status;
        bool graph; // of a GraphNodes request: finalStateHash is the values' root S_n and steps the node count n
        uint64 requestId;
        uint64 steps;
        uint32 openGames;
        uint96 refunded; // of the claim's bond, refunded so far to challengers who proved it wrong
        bytes32 finalStateHash;
    }

    enum Turn {
        Defender, // bisect, or prove the last step
        Challenger // select a segment
    }

    enum GameStatus {
        None,
        Active,
        DefenderWon,
        ChallengerWon
    }

    /// @notice What a game is dissecting: a VM run's states, or (a graph claim's phase 1) a graph run's values.
    enum Phase {
        Run,
        Graph
    }

    struct Game {
        address challenger;
        GameStatus status;
        Turn turn;
        Phase phase;
        uint64 claimId;
        uint64 lo; // agreed step
        uint64 hi; // disputed step
        uint64 lastMoveAt;
        uint64 defenderClock; // seconds left
        uint64 challengerClock;
        uint32 rounds; // segments selected so far
        uint32 moves; // the challenger's own moves: challenge, each select, and resolve or timeout it sent
        bytes32 loHash;
        bytes32 hiHash;
        bytes32 bisection; // keccak256 of the defender's interior hashes for [lo, hi]
    }

    // --- constants ------------------------------------------------------------------------------

    /// @notice Bounds the constructor enforces on the parameters.
    uint256 public constant MIN_ARITY = 2;
    uint256 public constant MAX_ARITY = 64;
    uint256 public constant BPS = 10_000;
    uint256 public constant MAX_WINDOW = 30 days;
    uint256 public constant MAX_CLOCK = 30 days;
    uint256 public constant MAX_REQUEST_TIMEOUT = 365 days;
    uint256 public constant MAX_CALLBACK_GAS = 5_000_000;
    /// @notice The largest output a result can carry (2^16 bytes). At this size the whole `finalize`
    ///         transaction (intrinsic and calldata gas, proving the output, the event, and a consumer
    ///         callback given MAX_CALLBACK_GAS) stays under 10M gas (docs/contracts.md, "Outputs"); a longer
    ///         length prefix makes the result OutputTooLarge.
    uint256 public constant MAX_OUTPUT_BYTES = 1 << 16;
    /// @notice The largest claim bond: a claim's refunds are counted in 96 bits.
    uint256 public constant MAX_CLAIM_BOND = type(uint96).max;
    /// @notice Gas `finalize` keeps beyond the callback's share for the call itself and what follows it.
    uint256 public constant CALLBACK_GAS_RESERVE = 10_000;
    /// @dev A call forwards at most 63/64 of the gas left (EIP-150).
    uint256 private constant CALL_GAS_DIVISOR = 64;

    // --- errors ---------------------------------------------------------------------------------

    /// @notice A deployment parameter is out of its bounds; `name` says which.
    error InvalidParameter(string name);
    /// @notice No program is registered under this id.
    error UnknownProgram(uint256 programId);
    /// @notice No model is registered under this id.
    error UnknownModel(uint256 modelId);
    /// @notice No request is registered under this id.
    error UnknownRequest(uint256 requestId);
    /// @notice No claim is registered under this id.
    error UnknownClaim(uint256 claimId);
    /// @notice No game is registered under this id.
    error UnknownGame(uint256 gameId);
    /// @notice msg.value is not the amount this call takes.
    error WrongPayment(uint256 expected, uint256 paid);
    /// @notice A root of zero cannot be registered (it marks an unknown id).
    error ZeroRoot();
    /// @notice The step limit asked for is 0 or above the deployment's maximum.
    error InvalidStepLimit(uint256 stepLimit, uint256 maxStepLimit);
    /// @notice The consumer is neither the zero address nor a contract.
    error ConsumerHasNoCode(address consumer);
    /// @notice The request is finalized or cancelled.
    error RequestNotOpen(uint256 requestId);
    /// @notice The request's deadline has not passed yet.
    error DeadlineNotReached(uint256 requestId, uint256 deadline);
    /// @notice The request still has live claims, which may yet become final; it may be cancelled regardless
    ///         from `cancellableAt` on (a last resort, see `cancel`).
    error ClaimsStillLive(uint256 requestId, uint256 liveClaims, uint256 cancellableAt);
    /// @notice The caller has no commitment to this claim from an earlier block.
    error NoCommitment(bytes32 commitment);
    /// @notice The fee does not fit the request's fee field.
    error FeeTooLarge(uint256 fee);
    /// @notice The claimed state neither exited nor stopped exactly at the request's step limit.
    error StateNotFinal(uint64 step, uint64 stepLimit);
    /// @notice The claimed state ran past the request's step limit.
    error StepLimitExceeded(uint64 step, uint64 stepLimit);
    /// @notice The output is not the output region of the claimed state.
    error OutputNotInState();
    /// @notice An output longer than MAX_OUTPUT_BYTES is no result: prove it OutputTooLarge instead.
    error OutputAboveCap(uint256 length, uint256 cap);
    /// @notice The claimed state has not exited, so its output region means nothing.
    error NotExited();
    /// @notice A graph claim's output of `length` bytes fits the cap: finalize it with finalizeGraph.
    error OutputWithinCap(uint256 length, uint256 cap);
    /// @notice The claim is not live.
    error ClaimNotLive(uint256 claimId);
    /// @notice The claim's challenge window is over.
    error ChallengeWindowClosed(uint256 claimId);
    /// @notice The claim's challenge window is still open.
    error ChallengeWindowOpen(uint256 claimId);
    /// @notice The claim still has games in progress.
    error GamesStillOpen(uint256 claimId, uint256 openGames);
    /// @notice This challenger already has a game against this claim.
    error AlreadyChallenged(uint256 claimId, address challenger);
    /// @notice A claimant cannot challenge its own claim.
    error OwnClaim(uint256 claimId);
    /// @notice The state given is not the claim's final state.
    error FinalStateMismatch();
    /// @notice The request is neither finalized nor cancelled, so its claims cannot be settled yet.
    error RequestNotFinalized(uint256 requestId);
    /// @notice The game has ended.
    error GameNotActive(uint256 gameId);
    /// @notice The program plays the other game (WholeRun or GraphNodes) than this call is for.
    error WrongProgramKind(uint256 requestId);
    /// @notice A graph claim has between 1 and Proofs.MAX_NODES nodes.
    error InvalidNodeCount(uint64 nodeCount);
    /// @notice The caller may not move in this game now.
    error NotYourTurn(uint256 gameId, address caller);
    /// @notice The move does not fit the game's interval (bisect at width <= 1, resolve at width != 1).
    error WrongPhase(uint256 gameId);
    /// @notice A bisection must carry one hash per interior point.
    error WrongHashCount(uint256 expected, uint256 given);
    /// @notice The hashes are not those of the defender's bisection.
    error BisectionMismatch();
    /// @notice There is no such segment.
    error SegmentOutOfRange(uint256 segment, uint256 segments);
    /// @notice The mover's clock ran out; the other side may call `timeout`.
    error ClockExpired(uint256 gameId);
    /// @notice The side to move still has time.
    error ClockNotExpired(uint256 gameId);
    /// @notice The pre-state given is not the agreed state.
    error PreStateMismatch(bytes32 expected, bytes32 given);
    /// @notice Too little gas was sent to give the consumer its full callback gas.
    error InsufficientGasForCallback(uint256 required, uint256 available);
    /// @notice The caller has no credit.
    error NothingToWithdraw();
    /// @notice The payment was refused by the recipient.
    error TransferFailed();

    // --- events ---------------------------------------------------------------------------------

    /// @notice A program was registered.
    event ProgramRegistered(uint256 indexed programId, bytes32 root, uint32 entry, ProgramKind kind);
    /// @notice A model was registered.
    event ModelRegistered(uint256 indexed modelId, bytes32 root, bytes32 fileHash, string uri);
    /// @notice An inference was requested; the input is only in this event and the transaction.
    event InferenceRequested(
        uint256 indexed requestId,
        uint256 indexed programId,
        uint256 indexed modelId,
        address requester,
        bytes input,
        bytes32 startStateHash,
        uint256 fee,
        uint64 stepLimit,
        uint64 deadline,
        address consumer
    );
    /// @notice A claimant committed to a result of an open request: see `commitmentOf`.
    event ClaimCommitted(bytes32 indexed commitment, address indexed claimant);
    /// @notice A claim was revealed with its bond. Its output is proven when it is finalized.
    event ClaimSubmitted(
        uint256 indexed requestId,
        uint256 indexed claimId,
        address indexed claimant,
        bytes32 finalStateHash,
        uint64 steps,
        bool exited,
        uint8 exitCode
    );
    /// @notice A claim lost a game.
    event ClaimRejected(uint256 indexed requestId, uint256 indexed claimId);
    /// @notice A live claim was settled after another claim of its request became final (Retired or
    ///         Forfeited) or after its request was cancelled (Released).
    event ClaimSettled(uint256 indexed requestId, uint256 indexed claimId, ClaimStatus status);
    /// @notice A claim's result became the request's final result; `feeClaimId` committed to it first.
    event ResultFinalized(
        uint256 indexed requestId,
        uint256 indexed claimId,
        uint256 feeClaimId,
        ResultKind kind,
        uint8 exitCode,
        bytes output
    );
    /// @notice A request was cancelled (unserved after its deadline, or as a last resort) and its fee credited
    ///         back to the requester.
    event RequestCancelled(uint256 indexed requestId);
    /// @notice The consumer's callback reverted or the consumer has no code any more.
    event CallbackFailed(uint256 indexed requestId, address consumer);
    /// @notice A game started against a claim.
    event GameStarted(uint256 indexed claimId, uint256 indexed gameId, address indexed challenger, uint64 steps);
    /// @notice The defender posted the state hashes at the interior points of [lo, hi].
    event Bisected(uint256 indexed gameId, uint64 lo, uint64 hi, bytes32[] hashes);
    /// @notice The challenger chose a segment; the game is now [lo, hi].
    event SegmentSelected(uint256 indexed gameId, uint256 segment, uint64 lo, uint64 hi);
    /// @notice Phase 1 of a graph claim's game reached one node and the defender linked it to a run of the node
    ///         program: the game now dissects that run, from `startStateHash` (step 0) to `finalStateHash`.
    /// @param header The node header the run starts with: big-endian u32s node, node count, operand count and
    ///        operand slots (docs/two-phase.md).
    event Linked(uint256 indexed gameId, bytes header, bytes32 startStateHash, bytes32 finalStateHash, uint64 steps);
    /// @notice A game ended.
    event GameEnded(uint256 indexed gameId, GameStatus status);
    /// @notice A challenger who proved a claim wrong was refunded `amount` of the claim's bond for its
    ///         `moves` moves (besides its own bond back).
    event MovesRefunded(
        uint256 indexed claimId, uint256 indexed gameId, address indexed challenger, uint256 moves, uint256 amount
    );
    /// @notice An amount was credited to an account, to be withdrawn.
    event Credited(address indexed account, uint256 amount);
    /// @notice An amount was sent to an account directly (finalize pays its claimant this way).
    event Paid(address indexed account, uint256 amount);
    /// @notice An amount was burned: it stays in this contract for ever.
    event Burned(uint256 amount);
    /// @notice An account withdrew its credit.
    event Withdrawn(address indexed account, address to, uint256 amount);

    // --- state ----------------------------------------------------------------------------------

    MIPS public immutable verifier;
    /// @notice The stateless checks: region roots, output proofs, the two-phase game's values and link.
    Proofs public immutable proofs;
    uint256 public immutable arity;
    uint256 public immutable claimBond;
    uint256 public immutable challengeBond;
    uint256 public immutable burnShareBps;
    uint256 public immutable challengeWindow;
    uint256 public immutable clockBudget;
    uint256 public immutable maxStepLimit;
    uint256 public immutable requestTimeout;
    uint256 public immutable callbackGasLimit;
    /// @notice Wei refunded, out of a rejected claim's bond, per move of a challenger who proved it wrong.
    uint256 public immutable moveRefund;

    uint256 public programCount;
    uint256 public modelCount;
    uint256 public requestCount;
    uint256 public claimCount;
    uint256 public gameCount;
    /// @notice Everything burned so far (it stays in the contract).
    uint256 public burned;

    mapping(uint256 => Program) public programs;
    mapping(uint256 => Model) public models;
    mapping(uint256 => Request) internal requests;
    mapping(uint256 => Claim) internal claims;
    mapping(uint256 => Game) internal games;
    /// @notice claim id => challenger => game id.
    mapping(uint256 => mapping(address => uint256)) public gameOf;
    /// @notice commitment => block it was made in.
    mapping(bytes32 => uint256) public commitments;
    /// @notice keccak256(abi.encode(requestId, resultId)) => the first committed claim of that result (see
    ///         `resultIdOf`).
    mapping(bytes32 => Lead) public leadOf;
    /// @notice Credit waiting to be withdrawn.
    mapping(address => uint256) public balances;

    constructor(MIPS verifier_, Proofs proofs_, Parameters memory parameters) {
        _validate(parameters);
        verifier = verifier_;
        proofs = proofs_;
        arity = parameters.arity;
        claimBond = parameters.claimBond;
        challengeBond = parameters.challengeBond;
        burnShareBps = parameters.burnShareBps;
        challengeWindow = parameters.challengeWindow;
        clockBudget = parameters.clockBudget;
        maxStepLimit = parameters.maxStepLimit;
        requestTimeout = parameters.requestTimeout;
        callbackGasLimit = parameters.callbackGasLimit;
        moveRefund = parameters.moveRefund;
    }

    // --- registry --------------------------------------------------------------------------------

    /// @notice Register a guest program by the root P of its program region, its entry point and the game its
    ///         requests play: WholeRun for a program that runs the whole model, GraphNodes for a node program.
    function registerProgram(bytes32 root, uint32 entry, ProgramKind kind) external returns (uint256 programId) {
        if (root == bytes32(0)) revert ZeroRoot();
        programId = ++programCount;
        programs[programId] = Program(root, entry, kind);
        emit ProgramRegistered(programId, root, entry, kind);
    }

    /// @notice Register a model by the root M of its model region, its file hash and where to fetch it.
    function registerModel(bytes32 root, bytes32 fileHash, string calldata uri) external returns (uint256 modelId) {
        if (root == bytes32(0)) revert ZeroRoot();
        modelId = ++modelCount;
        models[modelId] = Model(root, fileHash, uri);
        emit ModelRegistered(modelId, root, fileHash, uri);
    }

    /// @notice Ask for `programId` to run `modelId` on `input` for at most `stepLimit` steps. The fee
    ///         (msg.value) goes to the claim that becomes final, or back to the requester by `cancel` if
    ///         nobody serves the request before its deadline. The input root and start state are computed here:
    ///         the VM's initial state, or for a GraphNodes program the phase-1 state S_0 holding the input. For
    ///         a GraphNodes program, `stepLimit` bounds the node program's run of each node.
    /// @param consumer A contract to call back with the final result, or the zero address.
    function requestInference(
        uint256 programId,
        uint256 modelId,
        bytes calldata input,
        address consumer,
        uint64 stepLimit
    ) external payable returns (uint256 requestId) {
        Program storage program = programs[programId];
        if (program.root == bytes32(0)) revert UnknownProgram(programId);
        bytes32 modelRoot = models[modelId].root;
        if (modelRoot == bytes32(0)) revert UnknownModel(modelId);
        if (stepLimit == 0 || stepLimit > maxStepLimit) revert InvalidStepLimit(stepLimit, maxStepLimit);
        if (consumer != address(0) && consumer.code.length == 0) revert ConsumerHasNoCode(consumer);
        if (msg.value > type(uint128).max) revert FeeTooLarge(msg.value);
        bytes32 inputRoot = proofs.regionRoot(input);
        bytes32 start = program.kind == ProgramKind.GraphNodes
            ? proofs.inputState(inputRoot)
            : proofs.runStartState(program.root, inputRoot, modelRoot, program.entry);

        requestId = ++requestCount;
        uint64 deadline = uint64(block.timestamp + requestTimeout);
        requests[requestId] = Request({
            requester: msg.sender,
            status: RequestStatus.Open,
            liveClaims: 0,
            kind: ResultKind.None,
            exitCode: 0,
            lastClaimAt: 0,
            consumer: consumer,
            deadline: deadline,
            fee: uint128(msg.value),
            stepLimit: stepLimit,
            finalClaim: 0,
            programId: uint64(programId),
            modelId: uint64(modelId),
            startStateHash: start,
            outputHash: bytes32(0)
        });
        emit InferenceRequested(
            requestId, programId, modelId, msg.sender, input, start, msg.value, stepLimit, deadline, consumer
        );
    }

    /// @notice Return the fee of a request without a result: after its deadline with no live claim, or, as a
    ///         last resort, at `cancellableAt(requestId)` whatever its claims (a request whose claims can be
    ///         neither refuted nor finalized is not held for ever). Anyone may call it; the fee is credited to
    ///         the requester, and each claim still live is then settled by `settle` with its bond returned.
    ///         An honest claim is never cancelled this way: it can be finalized from at most
    ///         challengeWindow + 2 x clockBudget after its reveal, a whole requestTimeout before this.
    function cancel(uint256 requestId) external {
        Request storage request = _openRequest(requestId);
        if (block.timestamp < request.deadline) revert DeadlineNotReached(requestId, request.deadline);
        if (request.liveClaims != 0) {
            uint256 lastResort = _lastResortAt(request);
            if (block.timestamp < lastResort) revert ClaimsStillLive(requestId, request.liveClaims, lastResort);
        }
        request.status = RequestStatus.Cancelled;
        emit RequestCancelled(requestId);
        _credit(request.requester, request.fee);
    }

    /// @notice When `cancel` may end the request even with live claims: the later of its deadline and its
    ///         latest claim's reveal + challengeWindow + 2 x clockBudget + requestTimeout.
    function cancellableAt(uint256 requestId) external view returns (uint256) {
        Request storage request = requests[requestId];
        if (request.status == RequestStatus.None) revert UnknownRequest(requestId);
        return request.liveClaims == 0 ? request.deadline : _lastResortAt(request);
    }

    // --- claims ------------------------------------------------------------------------------------

    /// @notice First half of a claim: commit to a result of an open request without showing it, so that
    ///         nobody can copy it. A request that does not exist yet takes no commitment: a result computed
    ///         before a request is made cannot be committed ahead of the workers who serve that request.
    /// @param requestId The request, which must be open.
    /// @param commitment commitmentOf(requestId, resultId, claimant): the final state's hash, or for a graph claim
    ///        graphResultIdOf(valuesRoot, nodeCount).
    function commitClaim(uint256 requestId, bytes32 commitment) external {
        _openRequest(requestId);
        if (commitments[commitment] == 0) commitments[commitment] = block.number;
        emit ClaimCommitted(commitment, msg.sender);
    }

    /// @notice The commitment `claimant` makes to the result `resultId` (see `resultIdOf`) of `requestId`.
    function commitmentOf(uint256 requestId, bytes32 resultId, address claimant) public pure returns (bytes32) {
        return keccak256(abi.encode(requestId, resultId, claimant));
    }

    /// @notice What a claim says the result is: its final state, whose hash includes its step count; for a
    ///         graph claim, the root of its values together with its node count (see `graphResultIdOf`).
    function resultIdOf(bytes32 finalStateHash, uint64 steps, bool isGraph) public pure returns (bytes32) {
        return isGraph ? graphResultIdOf(finalStateHash, steps) : finalStateHash;
    }

    /// @notice A graph claim's result: its values' root and its node count, so a claim of the same values with
    ///         fewer nodes (an intermediate value posed as the output) is another result.
    function graphResultIdOf(bytes32 valuesRoot, uint64 nodeCount) public pure returns (bytes32) {
        return keccak256(abi.encode(valuesRoot, nodeCount));
    }

    /// @notice Second half of a claim: reveal the final state, with the claim bond (msg.value == claimBond),
    ///         in a later block than the commitment. The output is proven when the claim is finalized.
    /// @param stateData The encoded final state: exited with any exit code, or not exited at exactly the
    ///        request's step limit.
    function submitClaim(uint256 requestId, bytes calldata stateData) external payable returns (uint256 claimId) {
        Request storage request = _claimableRequest(requestId, ProgramKind.WholeRun);
        (, uint8 exitCode, bool exited, uint64 steps) = VMState.summarize(stateData);
        _checkFinal(exited, steps, request.stepLimit);
        claimId = _addClaim(requestId, request, keccak256(stateData), steps, false);
        emit ClaimSubmitted(requestId, claimId, msg.sender, keccak256(stateData), steps, exited, exitCode);
    }

    /// @notice `submitClaim` for a GraphNodes request: the root S_n of the run's values and its node count n
    ///         (docs/two-phase.md), with the claim bond, in a later block than the commitment.
    function submitGraphClaim(uint256 requestId, bytes32 valuesRoot, uint64 nodeCount)
        external
        payable
        returns (uint256 claimId)
    {
        Request storage request = _claimableRequest(requestId, ProgramKind.GraphNodes);
        if (nodeCount == 0 || nodeCount > proofs.MAX_NODES()) revert InvalidNodeCount(nodeCount);
        claimId = _addClaim(requestId, request, valuesRoot, nodeCount, true);
        emit ClaimSubmitted(requestId, claimId, msg.sender, valuesRoot, nodeCount, true, 0);
    }

    /// @notice Make a claim the request's result once its window has passed with no open game. Anyone may
    ///         call it with the claim's final state (from the claimant or a re-run) and its output region.
    ///         The claimant is paid its bond back; the fee goes to the claim that committed to this result
    ///         first (usually this one); payments that bounce become credits. The consumer, if any, is then
    ///         called with exactly `callbackGasLimit` gas. For an exited state whose output region is
    ///         malformed or too long, use `finalizeMalformed`.
    /// @param output The output region's bytes in the final state: at most MAX_OUTPUT_BYTES, with every byte of
    ///        the region after them zero (ResultKind.Output); empty when the step limit was reached.
    /// @param siblings The roots that prove `output` under the state's memory root (nodes 19, 8, 5, 3).
    function finalize(uint256 claimId, bytes calldata stateData, bytes calldata output, bytes32[4] calldata siblings)
        external
    {
        (Claim storage claim, Request storage request) = _finalizable(claimId, stateData);
        (bytes32 memRoot, uint8 exitCode, bool exited,) = VMState.summarize(stateData);
        ResultKind kind;
        if (exited) {
            if (output.length > MAX_OUTPUT_BYTES) revert OutputAboveCap(output.length, MAX_OUTPUT_BYTES);
            if (!proofs.isOutputOf(output, siblings, memRoot)) revert OutputNotInState();
            kind = ResultKind.Output;
        } else {
            if (output.length != 0) revert OutputNotInState();
            kind = ResultKind.StepLimitReached;
        }
        _finalize(claimId, claim, request, kind, exitCode, output);
    }

    /// @notice `finalize` for an exited state whose output region has no finalizable output: its length prefix
    ///         is above MAX_OUTPUT_BYTES (ResultKind.OutputTooLarge), or a byte after the output is nonzero
    ///         (ResultKind.MalformedOutput). The result carries no output. Same conditions and payments as
    ///         `finalize`.
    /// @param proof The region's first leaf and, unless its length is too large, a leaf with a nonzero byte
    ///        after the output, each with its 23 siblings in the region, and the region's 4 siblings in memory.
    function finalizeMalformed(uint256 claimId, bytes calldata stateData, Proofs.OutputProof calldata proof)
        external
    {
        (Claim storage claim, Request storage request) = _finalizable(claimId, stateData);
        (bytes32 memRoot, uint8 exitCode, bool exited,) = VMState.summarize(stateData);
        if (!exited) revert NotExited();
        bool tooLarge = proofs.outputFault(proof, memRoot, MAX_OUTPUT_BYTES);
        _finalize(
            claimId, claim, request, tooLarge ? ResultKind.OutputTooLarge : ResultKind.MalformedOutput, exitCode, ""
        );
    }

    /// @notice `finalize` for a graph claim: its output is value n (the node count) of its values, given with
    ///         the slot's siblings in S_n; at most MAX_OUTPUT_BYTES (ResultKind.Output, exit code 0).
    function finalizeGraph(uint256 claimId, bytes calldata output, bytes32[20] calldata siblings) external {
        (Claim storage claim, Request storage request) = _finalizableGraph(claimId);
        if (output.length > MAX_OUTPUT_BYTES) revert OutputAboveCap(output.length, MAX_OUTPUT_BYTES);
        if (!proofs.isGraphOutputOf(output, claim.steps, siblings, claim.finalStateHash)) revert OutputNotInState();
        _finalize(claimId, claim, request, ResultKind.Output, 0, output);
    }

    /// @notice `finalize` for a graph claim whose output value is longer than MAX_OUTPUT_BYTES
    ///         (ResultKind.OutputTooLarge): its region's first leaf (the length) and the value's siblings in S_n.
    function finalizeGraphTooLarge(
        uint256 claimId,
        InferenceLayout.LeafProof calldata first,
        bytes32[20] calldata siblings
    ) external {
        (Claim storage claim, Request storage request) = _finalizableGraph(claimId);
        (bool proven, uint256 length) = proofs.graphOutputLength(first, claim.steps, siblings, claim.finalStateHash);
        if (!proven) revert OutputNotInState();
        if (length <= MAX_OUTPUT_BYTES) revert OutputWithinCap(length, MAX_OUTPUT_BYTES);
        _finalize(claimId, claim, request, ResultKind.OutputTooLarge, 0, "");
    }

    /// @notice Settle a live claim of a request that has ended. Once the request is final: a claim of the same
    ///         final state gets its bond back (Retired); a claim of another result, unchallenged through its
    ///         window, forfeits its bond (all of it is burned). Once the request is cancelled: its bond comes
    ///         back (Released; nobody proved it wrong). Its games must have ended. Anyone may call it.
    function settle(uint256 claimId) external {
        Claim storage claim = _liveClaim(claimId);
        Request storage request = requests[claim.requestId];
        if (request.status == RequestStatus.Cancelled) {
            if (claim.openGames != 0) revert GamesStillOpen(claimId, claim.openGames);
            _settle(claimId, claim, request, ClaimStatus.Released);
            _credit(claim.claimant, claimBond);
            return;
        }
        if (request.status != RequestStatus.Finalized) revert RequestNotFinalized(claim.requestId);
        if (claim.openGames != 0) revert GamesStillOpen(claimId, claim.openGames);
        bool agrees = _resultIdOfClaim(claim) == _resultIdOfClaim(claims[request.finalClaim]);
        if (!agrees && block.timestamp < claim.submittedAt + challengeWindow) revert ChallengeWindowOpen(claimId);

        _settle(claimId, claim, request, agrees ? ClaimStatus.Retired : ClaimStatus.Forfeited);
        if (agrees) {
            _credit(claim.claimant, claimBond);
        } else {
            _burn(claimBond);
        }
    }

    // --- dispute games -------------------------------------------------------------------------------

    /// @notice Dispute a live claim within its window, with a bond (msg.value == challengeBond). The game
    ///         starts agreed on the request's start state (step 0) and disputed at the claim's final step; a
    ///         graph claim's game starts in phase 1, over its values.
    function challenge(uint256 claimId) external payable returns (uint256 gameId) {
        Claim storage claim = _liveClaim(claimId);
        if (block.timestamp >= claim.submittedAt + challengeWindow) revert ChallengeWindowClosed(claimId);
        if (msg.sender == claim.claimant) revert OwnClaim(claimId);
        if (gameOf[claimId][msg.sender] != 0) revert AlreadyChallenged(claimId, msg.sender);
        if (msg.value != challengeBond) revert WrongPayment(challengeBond, msg.value);

        gameId = ++gameCount;
        games[gameId] = Game({
            challenger: msg.sender,
            status: GameStatus.Active,
            turn: Turn.Defender,
            phase: claim.graph ? Phase.Graph : Phase.Run,
            claimId: uint64(claimId),
            lo: 0,
            hi: claim.steps,
            lastMoveAt: uint64(block.timestamp),
            defenderClock: uint64(clockBudget),
            challengerClock: uint64(clockBudget),
            rounds: 0,
            moves: 1,
            loHash: requests[claim.requestId].startStateHash,
            hiHash: claim.finalStateHash,
            bisection: bytes32(0)
        });
        gameOf[claimId][msg.sender] = gameId;
        claim.openGames += 1;
        emit GameStarted(claimId, gameId, msg.sender, claim.steps);
    }

    /// @notice The defender's move: the state hashes at the interior points of [lo, hi] (see `points`).
    function bisect(uint256 gameId, bytes32[] calldata hashes) external {
        Game storage game = _activeGame(gameId);
        if (msg.sender != claims[game.claimId].claimant || game.turn != Turn.Defender) {
            revert NotYourTurn(gameId, msg.sender);
        }
        if (game.hi - game.lo <= 1) revert WrongPhase(gameId);
        uint256 segments = segmentCount(game.lo, game.hi);
        if (hashes.length != segments - 1) revert WrongHashCount(segments - 1, hashes.length);
        _spendClock(game, gameId);

        game.bisection = keccak256(abi.encodePacked(hashes));
        game.turn = Turn.Challenger;
        emit Bisected(gameId, game.lo, game.hi, hashes);
    }

    /// @notice The challenger's move: the segment it disputes (the first one it disagrees with), given the
    ///         defender's hashes again (from Bisected).
    function select(uint256 gameId, uint256 segment, bytes32[] calldata hashes) external {
        Game storage game = _activeGame(gameId);
        if (msg.sender != game.challenger || game.turn != Turn.Challenger) revert NotYourTurn(gameId, msg.sender);
        if (keccak256(abi.encodePacked(hashes)) != game.bisection) revert BisectionMismatch();
        uint256 segments = hashes.length + 1;
        if (segment >= segments) revert SegmentOutOfRange(segment, segments);
        _spendClock(game, gameId);

        (uint64 lo, uint64 hi) = (game.lo, game.hi);
        bytes32 startHash = segment == 0 ? game.loHash : hashes[segment - 1];
        bytes32 endHash = segment + 1 == segments ? game.hiHash : hashes[segment];
        (game.lo, game.hi) = (_point(lo, hi, segments, segment), _point(lo, hi, segments, segment + 1));
        (game.loHash, game.hiHash) = (startHash, endHash);
        game.turn = Turn.Defender;
        game.rounds += 1;
        game.moves += 1;
        emit SegmentSelected(gameId, segment, game.lo, game.hi);
    }

    /// @notice Settle a game narrowed to one step by executing it: the defender wins if MIPS.step from the
    ///         agreed state gives the defender's hash. Anyone may call it; it counts as a move of the game's
    ///         challenger when the challenger sends it.
    /// @param stateData The encoded state at step `lo` (it must hash to the agreed hash).
    /// @param proof The step proof of MIPS.step.
    function resolve(uint256 gameId, bytes calldata stateData, bytes calldata proof) external {
        Game storage game = _activeGame(gameId);
        if (game.hi - game.lo != 1 || game.phase != Phase.Run) revert WrongPhase(gameId);
        if (keccak256(stateData) != game.loHash) revert PreStateMismatch(game.loHash, keccak256(stateData));
        bool defenderRight = verifier.step(stateData, proof) == game.hiHash;
        _countChallengerMove(game);
        _end(gameId, game, defenderRight ? GameStatus.DefenderWon : GameStatus.ChallengerWon);
    }

    /// @notice The defender's move when phase 1 of a graph claim's game is one node wide ([i, i + 1]): link node
    ///         i to a run of the node program (Proofs.link checks the openings in the agreed and disputed
    ///         states and the run's final state; the start state is built there from the registered program and
    ///         model). The game goes on over that run, the defender to bisect, the clocks as they were.
    /// @param openings abi.encode(Proofs.LinkOpenings): the node's operands, the input and the disputed value,
    ///        opened in the agreed and disputed states.
    /// @param finalState The node run's final state (docs/vm-spec.md encoding): exited with exit code 0.
    /// @param outputRegionSiblings Its memory's output region siblings (nodes 19, 8, 5 and 3).
    function link(
        uint256 gameId,
        bytes calldata openings,
        bytes calldata finalState,
        bytes32[4] calldata outputRegionSiblings
    ) external {
        Game storage game = _activeGame(gameId);
        Claim storage claim = claims[game.claimId];
        if (msg.sender != claim.claimant || game.turn != Turn.Defender) revert NotYourTurn(gameId, msg.sender);
        if (game.phase != Phase.Graph || game.hi - game.lo != 1) revert WrongPhase(gameId);
        _spendClock(game, gameId);

        Request storage request = requests[claim.requestId];
        Program storage program = programs[request.programId];
        Proofs.NodeRun memory run = Proofs.NodeRun({
            programRoot: program.root,
            entry: program.entry,
            modelRoot: models[request.modelId].root,
            node: game.lo,
            nodeCount: claim.steps,
            stepLimit: request.stepLimit,
            agreed: game.loHash,
            disputed: game.hiHash
        });
        (bytes32 start, bytes32 finalHash, uint64 steps, bytes memory header) =
            proofs.link(run, openings, finalState, outputRegionSiblings);
        (game.phase, game.lo, game.hi) = (Phase.Run, 0, steps);
        (game.loHash, game.hiHash, game.bisection) = (start, finalHash, bytes32(0));
        emit Linked(gameId, header, start, finalHash, steps);
    }

    /// @notice End a game whose side to move has run out of time: the other side wins. Anyone may call it; it
    ///         counts as a move of the game's challenger when the challenger sends it.
    function timeout(uint256 gameId) external {
        Game storage game = _activeGame(gameId);
        uint256 elapsed = block.timestamp - game.lastMoveAt;
        bool defenderToMove = game.turn == Turn.Defender;
        if (elapsed <= (defenderToMove ? game.defenderClock : game.challengerClock)) revert ClockNotExpired(gameId);
        _countChallengerMove(game);
        _end(gameId, game, defenderToMove ? GameStatus.ChallengerWon : GameStatus.DefenderWon);
    }

    // --- views -------------------------------------------------------------------------------------

    /// @notice A request, by id (all zero for an unknown id).
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return requests[requestId];
    }

    /// @notice A claim, by id (all zero for an unknown id).
    function getClaim(uint256 claimId) external view returns (Claim memory) {
        return claims[claimId];
    }

    /// @notice A game, by id (all zero for an unknown id).
    function getGame(uint256 gameId) external view returns (Game memory) {
        return games[gameId];
    }

    /// @notice The final result of a request, if it has one.
    function resultOf(uint256 requestId) external view returns (bool isFinal, Result memory result) {
        Request storage request = requests[requestId];
        if (request.status != RequestStatus.Finalized) return (false, result);
        return (true, Result(request.kind, request.exitCode, request.outputHash));
    }

    /// @notice Whether `output` is the final output of a request (for contracts handed the bytes later).
    function isFinalOutput(uint256 requestId, bytes calldata output) external view returns (bool) {
        Request storage request = requests[requestId];
        return request.status == RequestStatus.Finalized && request.outputHash == keccak256(output);
    }

    /// @notice Segments of a dissection of [lo, hi]: k, or fewer when the interval is shorter.
    function segmentCount(uint64 lo, uint64 hi) public view returns (uint256) {
        uint256 width = hi - lo;
        return width < arity ? width : arity;
    }

    /// @notice The step numbers that bound the segments of [lo, hi]: points(lo, hi)[i] for i = 0..segments.
    function points(uint64 lo, uint64 hi) external view returns (uint64[] memory result) {
        uint256 segments = segmentCount(lo, hi);
        result = new uint64[](segments + 1);
        for (uint256 i = 0; i <= segments; ++i) {
            result[i] = _point(lo, hi, segments, i);
        }
    }

    // --- payments ---------------------------------------------------------------------------------

    /// @notice Pay out everything credited to the caller.
    function withdraw() external {
        _withdraw(payable(msg.sender));
    }

    /// @notice Pay out everything credited to the caller, to `to` (for accounts that cannot receive ether).
    function withdrawTo(address payable to) external {
        _withdraw(to);
    }

    // --- internals -----------------------------------------------------------------------------------

    function _validate(Parameters memory p) private pure {
        if (p.arity < MIN_ARITY || p.arity > MAX_ARITY) revert InvalidParameter("arity");
        // a burned share of zero would let a party win its own forfeited bond back in full
        if (p.burnShareBps == 0 || p.burnShareBps > BPS) revert InvalidParameter("burnShareBps");
        if (p.claimBond * p.burnShareBps < BPS || p.claimBond > MAX_CLAIM_BOND) revert InvalidParameter("claimBond");
        if (p.challengeBond * p.burnShareBps < BPS) revert InvalidParameter("challengeBond");
        if (p.challengeWindow == 0 || p.challengeWindow > MAX_WINDOW) revert InvalidParameter("challengeWindow");
        if (p.clockBudget == 0 || p.clockBudget > MAX_CLOCK) revert InvalidParameter("clockBudget");
        if (p.maxStepLimit == 0 || p.maxStepLimit > type(uint64).max) revert InvalidParameter("maxStepLimit");
        if (p.requestTimeout == 0 || p.requestTimeout > MAX_REQUEST_TIMEOUT) revert InvalidParameter("requestTimeout");
        if (p.callbackGasLimit > MAX_CALLBACK_GAS) revert InvalidParameter("callbackGasLimit");
        // a refund of zero would leave an honest challenger's moves unpaid; one above the bond means nothing
        if (p.moveRefund == 0 || p.moveRefund > p.claimBond) revert InvalidParameter("moveRefund");
    }

    function _openRequest(uint256 requestId) private view returns (Request storage request) {
        request = requests[requestId];
        if (request.status == RequestStatus.None) revert UnknownRequest(requestId);
        if (request.status != RequestStatus.Open) revert RequestNotOpen(requestId);
    }

    function _liveClaim(uint256 claimId) private view returns (Claim storage claim) {
        claim = claims[claimId];
        if (claim.status == ClaimStatus.None) revert UnknownClaim(claimId);
        if (claim.status != ClaimStatus.Live) revert ClaimNotLive(claimId);
    }

    function _activeGame(uint256 gameId) private view returns (Game storage game) {
        game = games[gameId];
        if (game.status == GameStatus.None) revert UnknownGame(gameId);
        if (game.status != GameStatus.Active) revert GameNotActive(gameId);
    }

    /// @dev The claim may be finalized now with this final state: it is live, its request open, its window
    ///      over, it has no open game, and `stateData` is its final state (a graph claim has none: its final
    ///      state is a tree root, which no 190-byte state hashes to).
    function _finalizable(uint256 claimId, bytes calldata stateData)
        private
        view
        returns (Claim storage claim, Request storage request)
    {
        (claim, request) = _finalizableGraph(claimId);
        if (keccak256(stateData) != claim.finalStateHash) revert FinalStateMismatch();
    }

    /// @dev The claim may be finalized now: it is live, its request open, its window over, it has no open game.
    function _finalizableGraph(uint256 claimId) private view returns (Claim storage claim, Request storage request) {
        claim = _liveClaim(claimId);
        request = _openRequest(claim.requestId);
        if (block.timestamp < claim.submittedAt + challengeWindow) revert ChallengeWindowOpen(claimId);
        if (claim.openGames != 0) revert GamesStillOpen(claimId, claim.openGames);
    }

    /// @dev An open request of a program of `kind`, paid a claim bond.
    function _claimableRequest(uint256 requestId, ProgramKind kind) private view returns (Request storage request) {
        request = _openRequest(requestId);
        if (programs[request.programId].kind != kind) revert WrongProgramKind(requestId);
        if (msg.value != claimBond) revert WrongPayment(claimBond, msg.value);
    }

    /// @dev Record a revealed claim: its commitment used up, the request's live claims and latest claim time, and
    ///      the result's lead if it committed first.
    function _addClaim(uint256 requestId, Request storage request, bytes32 finalStateHash, uint64 steps, bool isGraph)
        private
        returns (uint256 claimId)
    {
        bytes32 resultId = resultIdOf(finalStateHash, steps, isGraph);
        uint256 committedAt = _useCommitment(requestId, resultId);
        claimId = ++claimCount;
        claims[claimId] = Claim({
            claimant: msg.sender,
            submittedAt: uint64(block.timestamp),
            status: ClaimStatus.Live,
            graph: isGraph,
            requestId: uint64(requestId),
            steps: steps,
            openGames: 0,
            refunded: 0,
            finalStateHash: finalStateHash
        });
        request.liveClaims += 1;
        request.lastClaimAt = uint40(block.timestamp);
        Lead storage lead = leadOf[_resultKey(requestId, resultId)];
        if (lead.claimId == 0 || committedAt < lead.committedAt) {
            (lead.claimId, lead.committedAt) = (uint64(claimId), uint64(committedAt));
        }
    }

    /// @dev Record the result, pay the claimant its bond and the fee's earner the fee, then call the consumer.
    function _finalize(
        uint256 claimId,
        Claim storage claim,
        Request storage request,
        ResultKind kind,
        uint8 exitCode,
        bytes memory output
    ) private {
        uint256 requestId = claim.requestId;
        claim.status = ClaimStatus.Finalized;
        (request.status, request.kind, request.exitCode) = (RequestStatus.Finalized, kind, exitCode);
        request.liveClaims -= 1;
        request.finalClaim = uint64(claimId);
        request.outputHash = keccak256(output);
        uint256 feeClaimId = leadOf[_resultKey(requestId, _resultIdOfClaim(claim))].claimId;
        address feeEarner = claims[feeClaimId].claimant;
        emit ResultFinalized(requestId, claimId, feeClaimId, kind, exitCode, output);
        if (feeEarner == claim.claimant) {
            _pay(claim.claimant, request.fee + claimBond);
        } else {
            _pay(claim.claimant, claimBond);
            _pay(feeEarner, request.fee);
        }

        address consumer = request.consumer;
        if (consumer != address(0)) {
            bytes memory callback =
                abi.encodeCall(IInferenceConsumer.onInferenceResult, (requestId, kind, exitCode, output));
            if (!_callWithExactGas(consumer, callback)) emit CallbackFailed(requestId, consumer);
        }
    }

    /// @dev End a live claim of an ended request.
    function _settle(uint256 claimId, Claim storage claim, Request storage request, ClaimStatus status) private {
        claim.status = status;
        request.liveClaims -= 1;
        emit ClaimSettled(claim.requestId, claimId, status);
    }

    /// @dev When a request with live claims may be cancelled anyway: by then every claim's window and games
    ///      are long over and any finalizable claim had requestTimeout seconds to be finalized.
    function _lastResortAt(Request storage request) private view returns (uint256) {
        uint256 lastResort = request.lastClaimAt + challengeWindow + 2 * clockBudget + requestTimeout;
        return lastResort > request.deadline ? lastResort : request.deadline;
    }

    /// @dev A claimable final state: exited within the step limit, or not exited at exactly the limit.
    function _checkFinal(bool exited, uint64 step, uint64 stepLimit) private pure {
        if (step > stepLimit) revert StepLimitExceeded(step, stepLimit);
        if (!exited && step != stepLimit) revert StateNotFinal(step, stepLimit);
    }

    /// @dev The caller committed to this result in an earlier block; the commitment is used up. Returns the
    ///      block of the commitment.
    function _useCommitment(uint256 requestId, bytes32 resultId) private returns (uint256 committedAt) {
        bytes32 commitment = commitmentOf(requestId, resultId, msg.sender);
        committedAt = commitments[commitment];
        if (committedAt == 0 || committedAt >= block.number) revert NoCommitment(commitment);
        delete commitments[commitment];
    }

    function _resultIdOfClaim(Claim storage claim) private view returns (bytes32) {
        return resultIdOf(claim.finalStateHash, claim.steps, claim.graph);
    }

    function _resultKey(uint256 requestId, bytes32 resultId) private pure returns (bytes32) {
        return keccak256(abi.encode(requestId, resultId));
    }

    function _point(uint64 lo, uint64 hi, uint256 segments, uint256 index) private pure returns (uint64) {
        return uint64(lo + (uint256(hi - lo) * index) / segments);
    }

    /// @dev Charge the mover's clock for the time since the last move, and restart it for the other side.
    function _spendClock(Game storage game, uint256 gameId) private {
        uint256 elapsed = block.timestamp - game.lastMoveAt;
        if (game.turn == Turn.Defender) {
            if (elapsed > game.defenderClock) revert ClockExpired(gameId);
            game.defenderClock -= uint64(elapsed);
        } else {
            if (elapsed > game.challengerClock) revert ClockExpired(gameId);
            game.challengerClock -= uint64(elapsed);
        }
        game.lastMoveAt = uint64(block.timestamp);
    }

    /// @dev Close a game and pay its bonds. A winning defender takes the challenger's bond (less the burned
    ///      share). A winning challenger gets its own bond back and a refund of `moveRefund` per move it made,
    ///      as far as the claim's refund pool (the claim bond less its burned share) still goes, and the claim
    ///      is Rejected; when the rejected claim's last game ends, whatever of its bond was not refunded is
    ///      burned. A copier of the honest challenger, or a liar's own sybil, thus earns at most its own moves.
    function _end(uint256 gameId, Game storage game, GameStatus outcome) private {
        game.status = outcome;
        uint256 claimId = game.claimId;
        Claim storage claim = claims[claimId];
        claim.openGames -= 1;
        emit GameEnded(gameId, outcome);

        if (outcome == GameStatus.DefenderWon) {
            _forfeit(challengeBond, claim.claimant);
        } else {
            address challenger = game.challenger;
            uint256 moves = game.moves;
            uint256 poolLeft = _refundPool() - claim.refunded;
            uint256 refund = moves * moveRefund;
            if (refund > poolLeft) refund = poolLeft;
            claim.refunded += uint96(refund);
            if (claim.status == ClaimStatus.Live) {
                claim.status = ClaimStatus.Rejected;
                requests[claim.requestId].liveClaims -= 1;
                emit ClaimRejected(claim.requestId, claimId);
            }
            emit MovesRefunded(claimId, gameId, challenger, moves, refund);
            _credit(challenger, challengeBond + refund);
        }
        if (claim.status == ClaimStatus.Rejected && claim.openGames == 0) {
            _burn(claimBond - claim.refunded);
        }
    }

    /// @dev What the challengers of a rejected claim may be refunded in all: its bond less the burned share.
    function _refundPool() private view returns (uint256) {
        return claimBond - claimBond * burnShareBps / BPS;
    }

    /// @dev A resolve or timeout sent by the game's challenger is one of its moves.
    function _countChallengerMove(Game storage game) private {
        if (msg.sender == game.challenger) game.moves += 1;
    }

    /// @dev A forfeited bond: the burned share is burned, the rest credited to `to`.
    function _forfeit(uint256 amount, address to) private {
        uint256 burnedShare = amount * burnShareBps / BPS;
        _burn(burnedShare);
        _credit(to, amount - burnedShare);
    }

    function _burn(uint256 amount) private {
        if (amount == 0) return;
        burned += amount;
        emit Burned(amount);
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        balances[account] += amount;
        emit Credited(account, amount);
    }

    /// @dev Send `amount` to `to` with only the 2,300-gas stipend (nothing it does can re-enter usefully); if
    ///      it refuses, credit it instead. Every state change is made before this is called.
    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        bool sent;
        assembly ("memory-safe") {
            sent := call(0, to, amount, 0, 0, 0, 0)
        }
        if (sent) {
            emit Paid(to, amount);
        } else {
            _credit(to, amount);
        }
    }

    function _withdraw(address payable to) private {
        uint256 amount = balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, to, amount);
        (bool sent,) = to.call{value: amount}("");
        if (!sent) revert TransferFailed();
    }

    /// @dev Call `target` with exactly `callbackGasLimit` gas, or revert if the caller of the transaction
    ///      sent too little for that (EIP-150 forwards at most 63/64 of what is left). A target without code
    ///      is not called. The return data is never copied, so the callee cannot make this call expensive.
    function _callWithExactGas(address target, bytes memory data) private returns (bool success) {
        if (target.code.length == 0) return false;
        uint256 gasLimit = callbackGasLimit;
        uint256 required = gasLimit + gasLimit / (CALL_GAS_DIVISOR - 1) + CALLBACK_GAS_RESERVE;
        uint256 available = gasleft();
        if (available < required) revert InsufficientGasForCallback(required, available);
        assembly ("memory-safe") {
            success := call(gasLimit, target, 0, add(data, 32), mload(data), 0, 0)
        }
    }
}
