// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title The DAISEE ledger: gateways' readings committed per interval and their communities'
/// market slots settled in an energy credit, checkable by anyone with a plain `eth_call`.
/// @notice Units are the gateway's: power in mW (positive: taken from the grid), energy in mWh,
/// prices in micro-units of currency per kWh, times in ms since 1970. One credit is one unit of
/// currency; its smallest part (decimals 15) is 1 nWh at 1 micro-unit per kWh, so that every
/// payment is an exact integer and a slot's payments with the pool sum to exactly zero.
contract DaiseeLedger is ERC20, Ownable {
    /// @notice Length of a commitment's interval: 15 minutes, aligned to the hour.
    int64 public constant INTERVAL_MS = 900_000;

    /// @notice What a gateway signs (EIP-191) to settle a slot: this tag, the chain, this
    /// contract, the gateway and its result.
    bytes32 public constant SETTLEMENT_TAG = keccak256("DAISEE ledger settlement v1");

    /// @notice A community: who registers its gateways, its pool and grid accounts, its terms.
    struct Community {
        address admin;
        address pool;
        address grid;
        int64 slotMs;
        uint64 importTariff;
        uint64 feedInTariff;
    }

    /// @notice A registered gateway and the ratings it declared.
    struct Gateway {
        bytes32 community;
        uint64 importMw;
        uint64 exportMw;
    }

    /// @notice A gateway's readings in one interval: their Merkle root, how many, and its grid
    /// meter's totals.
    struct Commitment {
        bytes32 root;
        uint32 readings;
        uint64 importMwh;
        uint64 exportMwh;
    }

    /// @notice One gateway's outcome of a slot its community's dialogue agreed.
    struct SlotResult {
        bytes32 community;
        int64 slot;
        bytes32 digest;
        uint64 price;
        int64 gridMw;
        int64 allocationMw;
        uint64 importMwh;
        uint64 exportMwh;
    }

    /// @notice What every result of one slot must agree on, fixed by its first settlement.
    struct Clearing {
        bytes32 digest;
        uint64 price;
        int64 gridMw;
        uint32 settled;
    }

    mapping(bytes32 => Community) private _communities;
    mapping(address => Gateway) private _gateways;
    mapping(address => mapping(int64 => Commitment)) private _commitments;
    mapping(bytes32 => mapping(int64 => Clearing)) private _clearings;
    mapping(bytes32 => mapping(int64 => mapping(address => bool))) private _settled;

    /// @notice A community was created.
    event CommunityCreated(bytes32 indexed community, address admin, address pool, address grid);
    /// @notice A gateway was registered in a community.
    event Registered(address indexed gateway, bytes32 indexed community, uint64 importMw, uint64 exportMw);
    /// @notice A gateway committed an interval's readings.
    event Committed(address indexed gateway, int64 indexed interval, bytes32 root, uint32 readings, uint64 importMwh, uint64 exportMwh);
    /// @notice A gateway's slot result was settled.
    event Settled(address indexed gateway, bytes32 indexed community, int64 indexed slot, int256 paidToPool, int256 paidToGrid);

    /// @notice The community exists already.
    error CommunityExists(bytes32 community);
    /// @notice No such community.
    error UnknownCommunity(bytes32 community);
    /// @notice The community's slot length is not a positive multiple of 3.6 s.
    error BadSlotLength(int64 slotMs);
    /// @notice Only the community's admin registers its gateways.
    error NotCommunityAdmin(address caller);
    /// @notice The gateway is registered already.
    error AlreadyRegistered(address gateway);
    /// @notice The key is not a registered gateway (of this community).
    error UnknownGateway(address gateway);
    /// @notice The time is not the start of an interval (or of a slot).
    error NotAligned(int64 time);
    /// @notice The gateway committed this interval already.
    error AlreadyCommitted(address gateway, int64 interval);
    /// @notice A commitment without readings.
    error NoReadings();
    /// @notice The gateway committed nothing for this interval.
    error NoCommitment(address gateway, int64 interval);
    /// @notice The signature is not the gateway's.
    error NotSignedByGateway(address gateway, address signer);
    /// @notice The gateway settled this slot already.
    error AlreadySettled(address gateway, int64 slot);
    /// @notice The allocation is beyond the gateway's declared ratings.
    error BeyondRatings(int64 allocationMw);
    /// @notice The result's digest, price or grid share is not the one the slot settled with.
    error ResultDisagrees(int64 slot, bytes32 digest, uint64 price, int64 gridMw);

    constructor() ERC20("DAISEE energy credit", "DEC") Ownable(msg.sender) {}

    /// @notice Credits have 15 decimals: 1 nWh at 1 micro-unit per kWh.
    function decimals() public pure override returns (uint8) {
        return 15;
    }

    /// @notice Issues credits to an account (a community's pool, a gateway's deposit).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice Creates a community with its admin, pool and grid accounts and its terms.
    function createCommunity(
        bytes32 community,
        address admin,
        address pool,
        address grid,
        int64 slotMs,
        uint64 importTariff,
        uint64 feedInTariff
    ) external onlyOwner {
        if (_communities[community].admin != address(0)) revert CommunityExists(community);
        if (slotMs <= 0 || slotMs % 3600 != 0) revert BadSlotLength(slotMs);
        _communities[community] = Community(admin, pool, grid, slotMs, importTariff, feedInTariff);
        emit CommunityCreated(community, admin, pool, grid);
    }

    /// @notice Registers a gateway in the caller's community with its declared ratings.
    function register(address gateway, bytes32 community, uint64 importMw, uint64 exportMw) external {
        Community storage c = _communities[community];
        if (c.admin == address(0)) revert UnknownCommunity(community);
        if (msg.sender != c.admin) revert NotCommunityAdmin(msg.sender);
        if (_gateways[gateway].community != bytes32(0)) revert AlreadyRegistered(gateway);
        _gateways[gateway] = Gateway(community, importMw, exportMw);
        emit Registered(gateway, community, importMw, exportMw);
    }

    /// @notice Commits the caller's readings of the interval starting at `interval`.
    function commit(int64 interval, bytes32 root, uint32 readings, uint64 importMwh, uint64 exportMwh) external {
        if (_gateways[msg.sender].community == bytes32(0)) revert UnknownGateway(msg.sender);
        if (interval % INTERVAL_MS != 0) revert NotAligned(interval);
        if (readings == 0) revert NoReadings();
        if (_commitments[msg.sender][interval].readings != 0) revert AlreadyCommitted(msg.sender, interval);
        _commitments[msg.sender][interval] = Commitment(root, readings, importMwh, exportMwh);
        emit Committed(msg.sender, interval, root, readings, importMwh, exportMwh);
    }

    /// @notice Whether a reading (channel, time, power) is in the gateway's commitment of its
    /// interval, by its Merkle proof (sorted pairs, leaves hashed twice).
    function verifyReading(
        address gateway,
        string calldata channel,
        int64 timeMs,
        int64 powerMw,
        bytes32[] calldata proof
    ) external view returns (bool) {
        int64 interval = timeMs - _floorMod(timeMs, INTERVAL_MS);
        Commitment storage c = _commitments[gateway][interval];
        if (c.readings == 0) revert NoCommitment(gateway, interval);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(channel, timeMs, powerMw))));
        return MerkleProof.verifyCalldata(proof, c.root, leaf);
    }

    /// @notice Settles a gateway's slot result, which counts only with its signature: pays the
    /// allocation at the slot's price with the pool, and the deviation from it at the grid's
    /// tariffs with the grid account. The first result of a slot fixes what the others must
    /// agree on and pays the grid's share of the clearing with the pool.
    function settle(address gateway, SlotResult calldata r, bytes calldata signature) external {
        Community storage c = _communities[r.community];
        if (_gateways[gateway].community != r.community || c.admin == address(0)) revert UnknownGateway(gateway);
        (address signer, ECDSA.RecoverError failure,) =
            ECDSA.tryRecover(MessageHashUtils.toEthSignedMessageHash(settlementHash(gateway, r)), signature);
        if (failure != ECDSA.RecoverError.NoError || signer != gateway) revert NotSignedByGateway(gateway, signer);
        if (r.slot % c.slotMs != 0) revert NotAligned(r.slot);
        if (_settled[r.community][r.slot][gateway]) revert AlreadySettled(gateway, r.slot);
        Gateway storage g = _gateways[gateway];
        if (r.allocationMw > int64(g.importMw) || -r.allocationMw > int64(g.exportMw)) {
            revert BeyondRatings(r.allocationMw);
        }
        Clearing storage clearing = _clearings[r.community][r.slot];
        int256 perMw = int256(c.slotMs / 3600);
        if (clearing.settled == 0) {
            _clearings[r.community][r.slot] = Clearing(r.digest, r.price, r.gridMw, 0);
            // The grid's share of the clearing: what the community took from it, paid by the pool.
            _pay(c.pool, c.grid, int256(r.gridMw) * perMw * int256(uint256(r.price)));
        } else if (clearing.digest != r.digest || clearing.price != r.price || clearing.gridMw != r.gridMw) {
            revert ResultDisagrees(r.slot, clearing.digest, clearing.price, clearing.gridMw);
        }
        clearing.settled += 1;
        _settled[r.community][r.slot][gateway] = true;

        int256 toPool = int256(r.allocationMw) * perMw * int256(uint256(r.price));
        int256 deviation = (int256(uint256(r.importMwh)) - int256(uint256(r.exportMwh))) * 1000
            - int256(r.allocationMw) * perMw;
        int256 toGrid = deviation * int256(uint256(deviation > 0 ? c.importTariff : c.feedInTariff));
        _pay(gateway, c.pool, toPool);
        _pay(gateway, c.grid, toGrid);
        emit Settled(gateway, r.community, r.slot, toPool, toGrid);
    }

    /// @notice The hash a gateway signs (EIP-191) to settle `r`.
    function settlementHash(address gateway, SlotResult calldata r) public view returns (bytes32) {
        return keccak256(abi.encode(SETTLEMENT_TAG, block.chainid, address(this), gateway, r));
    }

    /// @notice A community's accounts and terms.
    function communityOf(bytes32 id) external view returns (Community memory) {
        return _communities[id];
    }

    /// @notice A gateway's community and ratings (community zero: not registered).
    function gatewayOf(address gateway) external view returns (Gateway memory) {
        return _gateways[gateway];
    }

    /// @notice A gateway's commitment of an interval (zero readings: none).
    function commitmentOf(address gateway, int64 interval) external view returns (Commitment memory) {
        return _commitments[gateway][interval];
    }

    /// @notice What a slot settled with, and how many gateways settled it.
    function clearingOf(bytes32 id, int64 slot) external view returns (Clearing memory) {
        return _clearings[id][slot];
    }

    /// @notice Whether a gateway settled a slot.
    function isSettled(bytes32 id, int64 slot, address gateway) external view returns (bool) {
        return _settled[id][slot][gateway];
    }

    /// @dev Moves `amount` from `from` to `to`, or the other way when it is negative.
    function _pay(address from, address to, int256 amount) private {
        if (amount > 0) {
            _transfer(from, to, uint256(amount));
        } else if (amount < 0) {
            _transfer(to, from, uint256(-amount));
        }
    }

    /// @dev `a` mod `m` in [0, m), also for a negative `a`.
    function _floorMod(int64 a, int64 m) private pure returns (int64) {
        int64 r = a % m;
        return r < 0 ? r + m : r;
    }
}
