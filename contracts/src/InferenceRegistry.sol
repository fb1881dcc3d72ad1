// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "./InferenceLayout.sol";
import {MIPS} from "./MIPS.sol";
import {VMState} from "./VMState.sol";

/// @notice A contract that wants to hear about its finalized inference results.
interface IInferenceConsumer {
    /// @notice Called once, when the result of `requestId` becomes final.
    function onInferenceResult(uint256 requestId, uint8 exitCode, bytes calldata output) external;
}

/// @title InferenceRegistry
/// @notice Optimistic ML inference: programs and models are registered; a request carries its input
///         on-chain; a bonded claim posts the final VM state and the output; any challenger may open a
///         dispute game against a claim, narrowed by k-ary dissection to one step that MIPS.sol executes.
///         Each side of a game has a chess clock; a side whose clock runs out loses. A claim that loses any
///         game is rejected and the request may be claimed again; an unchallenged claim becomes final after
///         the challenge window. Payments are pulled with `withdraw`.
contract InferenceRegistry {
    // --- types -------------------------------------------------------------------------------

    struct Parameters {
        uint256 arity; // k: segments per dissection round
        uint256 claimBond;
        uint256 challengeBond;
        uint256 challengeWindow; // seconds after a claim during which it may be challenged
        uint256 clockBudget; // seconds each side of a game may spend on its moves
        uint256 callbackGasLimit;
    }

    struct Program {
        bytes32 root; // P
        uint32 entry;
    }

    struct Model {
        bytes32 root; // M
        bytes32 fileHash;
        string uri;
    }

    enum RequestStatus {
        None,
        Open,
        Claimed,
        Finalized
    }

    struct Request {
        address requester;
        RequestStatus status;
        uint64 liveClaim; // claim id, 0 for none (packed with the status: both change together)
        address consumer; // optional callback target
        uint256 fee;
        uint256 programId;
        uint256 modelId;
        bytes32 startStateHash;
    }

    struct Result {
        uint8 exitCode;
        bytes output;
    }

    enum ClaimStatus {
        None,
        Live,
        Rejected,
        Finalized
    }

    /// @dev Three storage slots: a claim is paid for by its claimant, so it stores only what the games
    ///      and `finalize` need; the output is proven again from the final state when it is finalized.
    struct Claim {
        address claimant;
        uint64 submittedAt;
        ClaimStatus status;
        bool bondPaidOut;
        uint64 requestId;
        uint64 steps;
        uint32 openGames;
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

    struct Game {
        uint256 claimId;
        address challenger;
        GameStatus status;
        Turn turn;
        uint64 lo; // agreed step
        uint64 hi; // disputed step
        uint64 lastMoveAt;
        uint64 defenderClock; // seconds left
        uint64 challengerClock;
        bytes32 loHash;
        bytes32 hiHash;
        bytes32 bisection; // keccak256 of the defender's interior hashes for [lo, hi]
    }

    // --- errors ---------------------------------------------------------------------------------

    error InvalidParameters();
    error UnknownProgram(uint256 programId);
    error UnknownModel(uint256 modelId);
    error UnknownRequest(uint256 requestId);
    error UnknownClaim(uint256 claimId);
    error UnknownGame(uint256 gameId);
    error WrongPayment(uint256 expected, uint256 paid);
    error RequestNotOpen(uint256 requestId);
    error StateNotExited();
    error OutputNotInState();
    error ClaimNotLive(uint256 claimId);
    error ChallengeWindowClosed(uint256 claimId);
    error ChallengeWindowOpen(uint256 claimId);
    error GamesStillOpen(uint256 claimId, uint256 openGames);
    error AlreadyChallenged(uint256 claimId, address challenger);
    error FinalStateMismatch();
    error GameNotActive(uint256 gameId);
    error NotYourTurn(uint256 gameId, address caller);
    error NotTheMover(uint256 gameId, address caller);
    error WrongPhase(uint256 gameId);
    error WrongHashCount(uint256 expected, uint256 given);
    error BisectionMismatch();
    error SegmentOutOfRange(uint256 segment, uint256 segments);
    error ClockExpired(uint256 gameId);
    error ClockNotExpired(uint256 gameId);
    error PreStateMismatch(bytes32 expected, bytes32 given);
    error NothingToWithdraw();
    error TransferFailed();

    // --- events ---------------------------------------------------------------------------------

    event ProgramRegistered(uint256 indexed programId, bytes32 root, uint32 entry);
    event ModelRegistered(uint256 indexed modelId, bytes32 root, bytes32 fileHash, string uri);
    event InferenceRequested(
        uint256 indexed requestId, uint256 indexed programId, uint256 indexed modelId, bytes input, bytes32 startStateHash
    );
    event ClaimSubmitted(
        uint256 indexed requestId, uint256 indexed claimId, address claimant, bytes32 finalStateHash, uint64 steps,
        uint8 exitCode, bytes output
    );
    event ClaimRejected(uint256 indexed requestId, uint256 indexed claimId);
    event ResultFinalized(uint256 indexed requestId, uint256 indexed claimId, uint8 exitCode, bytes output);
    event CallbackFailed(uint256 indexed requestId, address consumer);
    event GameStarted(uint256 indexed claimId, uint256 indexed gameId, address challenger, uint64 steps);
    event Bisected(uint256 indexed gameId, uint64 lo, uint64 hi, bytes32[] hashes);
    event SegmentSelected(uint256 indexed gameId, uint64 lo, uint64 hi);
    event GameEnded(uint256 indexed gameId, GameStatus status);
    event Credited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    // --- state ----------------------------------------------------------------------------------

    MIPS public immutable verifier;
    uint256 public immutable arity;
    uint256 public immutable claimBond;
    uint256 public immutable challengeBond;
    uint256 public immutable challengeWindow;
    uint256 public immutable clockBudget;
    uint256 public immutable callbackGasLimit;

    uint256 public programCount;
    uint256 public modelCount;
    uint256 public requestCount;
    uint256 public claimCount;
    uint256 public gameCount;

    mapping(uint256 => Program) public programs;
    mapping(uint256 => Model) public models;
    mapping(uint256 => Request) public requests;
    mapping(uint256 => Claim) public claims;
    mapping(uint256 => Game) public games;
    mapping(uint256 => mapping(address => uint256)) public gameOf; // claim id => challenger => game id
    mapping(uint256 => Result) private results; // request id => final result
    mapping(address => uint256) public balances;

    constructor(MIPS verifier_, Parameters memory parameters) {
        if (parameters.arity < 2 || parameters.clockBudget == 0 || parameters.clockBudget > type(uint64).max) {
            revert InvalidParameters();
        }
        verifier = verifier_;
        arity = parameters.arity;
        claimBond = parameters.claimBond;
        challengeBond = parameters.challengeBond;
        challengeWindow = parameters.challengeWindow;
        clockBudget = parameters.clockBudget;
        callbackGasLimit = parameters.callbackGasLimit;
    }

    // --- registry --------------------------------------------------------------------------------

    /// @notice Register a guest program by the root P of its program region and its entry point.
    function registerProgram(bytes32 root, uint32 entry) external returns (uint256 programId) {
        programId = ++programCount;
        programs[programId] = Program(root, entry);
        emit ProgramRegistered(programId, root, entry);
    }

    /// @notice Register a model by the root M of its model region, its file hash and where to fetch it.
    function registerModel(bytes32 root, bytes32 fileHash, string calldata uri) external returns (uint256 modelId) {
        modelId = ++modelCount;
        models[modelId] = Model(root, fileHash, uri);
        emit ModelRegistered(modelId, root, fileHash, uri);
    }

    /// @notice Ask for `program` to run `model` on `input`; the fee (msg.value) goes to the claim that
    ///         becomes final. The input root and the run's start state are computed here.
    /// @param consumer A contract to call back with the final result, or the zero address.
    function requestInference(uint256 programId, uint256 modelId, bytes calldata input, address consumer)
        external
        payable
        returns (uint256 requestId)
    {
        Program storage program = programs[programId];
        if (program.root == bytes32(0)) revert UnknownProgram(programId);
        bytes32 modelRoot = models[modelId].root;
        if (modelRoot == bytes32(0)) revert UnknownModel(modelId);
        bytes32 start = InferenceLayout.initialStateHash(
            program.root, InferenceLayout.regionRoot(input), modelRoot, program.entry
        );
        requestId = ++requestCount;
        requests[requestId] = Request(msg.sender, RequestStatus.Open, 0, consumer, msg.value, programId, modelId, start);
        emit InferenceRequested(requestId, programId, modelId, input, start);
    }

    // --- claims ------------------------------------------------------------------------------------

    /// @notice Claim the result of an open request with a bond (msg.value == claimBond).
    /// @param stateData The encoded final state: exited, with any exit code.
    /// @param output The output region's bytes in that state.
    /// @param siblings The roots that prove `output` under the state's memory root (nodes 19, 8, 5, 3).
    function submitClaim(uint256 requestId, bytes calldata stateData, bytes calldata output, bytes32[4] calldata siblings)
        external
        payable
        returns (uint256 claimId)
    {
        Request storage request = requests[requestId];
        if (request.status != RequestStatus.Open) revert RequestNotOpen(requestId);
        if (msg.value != claimBond) revert WrongPayment(claimBond, msg.value);
        VMState.State memory state = VMState.decode(stateData);
        if (!state.exited) revert StateNotExited();
        if (!InferenceLayout.isOutputOf(output, siblings, state.memRoot)) revert OutputNotInState();

        claimId = ++claimCount;
        claims[claimId] = Claim({
            claimant: msg.sender,
            submittedAt: uint64(block.timestamp),
            status: ClaimStatus.Live,
            bondPaidOut: false,
            requestId: uint64(requestId),
            steps: state.step,
            openGames: 0,
            finalStateHash: keccak256(stateData)
        });
        request.status = RequestStatus.Claimed;
        request.liveClaim = uint64(claimId);
        emit ClaimSubmitted(requestId, claimId, msg.sender, keccak256(stateData), state.step, state.exitCode, output);
    }

    /// @notice Make a claim final once its window has passed and its games are over. Anyone may call it
    ///         with the claim's arguments (from ClaimSubmitted); the output is stored as the result.
    function finalize(uint256 requestId, bytes calldata stateData, bytes calldata output, bytes32[4] calldata siblings)
        external
    {
        Request storage request = requests[requestId];
        if (request.status != RequestStatus.Claimed) revert RequestNotOpen(requestId);
        uint256 claimId = request.liveClaim;
        Claim storage claim = claims[claimId];
        if (block.timestamp < claim.submittedAt + challengeWindow) revert ChallengeWindowOpen(claimId);
        if (claim.openGames != 0) revert GamesStillOpen(claimId, claim.openGames);
        if (keccak256(stateData) != claim.finalStateHash) revert FinalStateMismatch();
        VMState.State memory state = VMState.decode(stateData);
        if (!InferenceLayout.isOutputOf(output, siblings, state.memRoot)) revert OutputNotInState();

        claim.status = ClaimStatus.Finalized;
        request.status = RequestStatus.Finalized;
        results[requestId] = Result(state.exitCode, output);
        _credit(claim.claimant, request.fee + (claim.bondPaidOut ? 0 : claimBond));
        claim.bondPaidOut = true;
        emit ResultFinalized(requestId, claimId, state.exitCode, output);

        if (request.consumer != address(0)) {
            try IInferenceConsumer(request.consumer).onInferenceResult{gas: callbackGasLimit}(
                requestId, state.exitCode, output
            ) {} catch {
                emit CallbackFailed(requestId, request.consumer);
            }
        }
    }

    /// @notice The final result of a request, if it has one.
    function resultOf(uint256 requestId) external view returns (bool isFinal, uint8 exitCode, bytes memory output) {
        if (requests[requestId].status != RequestStatus.Finalized) return (false, 0, "");
        Result storage result = results[requestId];
        return (true, result.exitCode, result.output);
    }

    // --- dispute games -------------------------------------------------------------------------------

    /// @notice Dispute a live claim within its window, with a bond (msg.value == challengeBond). The game
    ///         starts agreed on the request's start state (step 0) and disputed at the claim's final step.
    function challenge(uint256 claimId) external payable returns (uint256 gameId) {
        Claim storage claim = claims[claimId];
        if (claim.status != ClaimStatus.Live) revert ClaimNotLive(claimId);
        if (block.timestamp >= claim.submittedAt + challengeWindow) revert ChallengeWindowClosed(claimId);
        if (gameOf[claimId][msg.sender] != 0) revert AlreadyChallenged(claimId, msg.sender);
        if (msg.value != challengeBond) revert WrongPayment(challengeBond, msg.value);

        gameId = ++gameCount;
        games[gameId] = Game({
            claimId: claimId,
            challenger: msg.sender,
            status: GameStatus.Active,
            turn: Turn.Defender,
            lo: 0,
            hi: claim.steps,
            lastMoveAt: uint64(block.timestamp),
            defenderClock: uint64(clockBudget),
            challengerClock: uint64(clockBudget),
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
        if (msg.sender != claims[game.claimId].claimant) revert NotYourTurn(gameId, msg.sender);
        if (game.turn != Turn.Defender) revert NotYourTurn(gameId, msg.sender);
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
        emit SegmentSelected(gameId, game.lo, game.hi);
    }

    /// @notice Settle a game narrowed to one step by executing it: the defender wins if MIPS.step from the
    ///         agreed state gives the defender's hash. Anyone may call it.
    /// @param stateData The encoded state at step `lo` (it must hash to the agreed hash).
    /// @param proof The step proof of MIPS.step.
    function resolve(uint256 gameId, bytes calldata stateData, bytes calldata proof) external {
        Game storage game = _activeGame(gameId);
        if (game.hi - game.lo != 1) revert WrongPhase(gameId);
        if (keccak256(stateData) != game.loHash) revert PreStateMismatch(game.loHash, keccak256(stateData));
        bool defenderRight = verifier.step(stateData, proof) == game.hiHash;
        _end(gameId, game, defenderRight ? GameStatus.DefenderWon : GameStatus.ChallengerWon);
    }

    /// @notice End a game whose side to move has run out of time: the other side wins.
    function timeout(uint256 gameId) external {
        Game storage game = _activeGame(gameId);
        uint256 elapsed = block.timestamp - game.lastMoveAt;
        bool defenderToMove = game.turn == Turn.Defender;
        if (elapsed <= (defenderToMove ? game.defenderClock : game.challengerClock)) revert ClockNotExpired(gameId);
        _end(gameId, game, defenderToMove ? GameStatus.ChallengerWon : GameStatus.DefenderWon);
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
        uint256 amount = balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool sent,) = msg.sender.call{value: amount}("");
        if (!sent) revert TransferFailed();
    }

    // --- internals -----------------------------------------------------------------------------------

    function _point(uint64 lo, uint64 hi, uint256 segments, uint256 index) private pure returns (uint64) {
        return uint64(lo + (uint256(hi - lo) * index) / segments);
    }

    function _activeGame(uint256 gameId) private view returns (Game storage game) {
        game = games[gameId];
        if (game.status == GameStatus.None) revert UnknownGame(gameId);
        if (game.status != GameStatus.Active) revert GameNotActive(gameId);
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

    /// @dev Close a game and pay its bonds: a winning defender takes the challenger's bond; a winning
    ///      challenger gets its bond back plus the claim's bond (once per claim), and the claim is rejected.
    function _end(uint256 gameId, Game storage game, GameStatus outcome) private {
        game.status = outcome;
        Claim storage claim = claims[game.claimId];
        claim.openGames -= 1;
        emit GameEnded(gameId, outcome);
        if (outcome == GameStatus.DefenderWon) {
            _credit(claim.claimant, challengeBond);
            return;
        }
        uint256 award = challengeBond;
        if (!claim.bondPaidOut) {
            claim.bondPaidOut = true;
            award += claimBond;
        }
        _credit(game.challenger, award);
        if (claim.status == ClaimStatus.Live) {
            claim.status = ClaimStatus.Rejected;
            Request storage request = requests[claim.requestId];
            request.status = RequestStatus.Open;
            request.liveClaim = 0;
            emit ClaimRejected(claim.requestId, game.claimId);
        }
    }

    function _credit(address account, uint256 amount) private {
        balances[account] += amount;
        emit Credited(account, amount);
    }
}
