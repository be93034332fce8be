// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "./Vm.sol";

/// @notice Paths of the official compiled artifacts installed by `npm ci`, and
///         helpers to deploy them in forge tests (foundry.toml grants read
///         access to node_modules).
library Artifacts {
    Vm private constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    string internal constant UNISWAP_V3_FACTORY =
        "node_modules/@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json";
    string internal constant UNISWAP_V3_POOL =
        "node_modules/@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json";
    string internal constant NONFUNGIBLE_POSITION_MANAGER =
        "node_modules/@uniswap/v3-periphery/artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json";
    string internal constant NONFUNGIBLE_TOKEN_POSITION_DESCRIPTOR =
        "node_modules/@uniswap/v3-periphery/artifacts/contracts/NonfungibleTokenPositionDescriptor.sol/NonfungibleTokenPositionDescriptor.json";
    string internal constant NFT_DESCRIPTOR =
        "node_modules/@uniswap/v3-periphery/artifacts/contracts/libraries/NFTDescriptor.sol/NFTDescriptor.json";
    string internal constant QUOTER_V2 =
        "node_modules/@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json";
    string internal constant SWAP_ROUTER_02 =
        "node_modules/@uniswap/swap-router-contracts/artifacts/contracts/SwapRouter02.sol/SwapRouter02.json";
    string internal constant WETH9 = "node_modules/canonical-weth/build/contracts/WETH9.json";
    /// @dev Waffle format (top-level `bytecode` without 0x, plus `evm.bytecode`):
    ///      vm.getCode rejects it ("duplicate field `bytecode`"); use `jsonCode`.
    string internal constant WETH9_UNISWAP = "node_modules/@uniswap/v2-periphery/build/WETH9.json";
    string internal constant SAFE =
        "node_modules/@safe-global/safe-contracts/build/artifacts/contracts/Safe.sol/Safe.json";
    string internal constant SAFE_L2 =
        "node_modules/@safe-global/safe-contracts/build/artifacts/contracts/SafeL2.sol/SafeL2.json";
    string internal constant SAFE_PROXY_FACTORY =
        "node_modules/@safe-global/safe-contracts/build/artifacts/contracts/proxies/SafeProxyFactory.sol/SafeProxyFactory.json";
    string internal constant MULTI_SEND =
        "node_modules/@safe-global/safe-contracts/build/artifacts/contracts/libraries/MultiSend.sol/MultiSend.json";
    string internal constant MULTI_SEND_CALL_ONLY =
        "node_modules/@safe-global/safe-contracts/build/artifacts/contracts/libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json";
    string internal constant COMPATIBILITY_FALLBACK_HANDLER =
        "node_modules/@safe-global/safe-contracts/build/artifacts/contracts/handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json";

    /// @dev keccak256 of UniswapV3Pool's creation code, as hard-coded in the
    ///      periphery's PoolAddress library (and used on mainnet).
    bytes32 internal constant POOL_INIT_CODE_HASH = 0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54;

    /// @dev solc library placeholder for contracts/libraries/NFTDescriptor.sol:NFTDescriptor
    ///      in NonfungibleTokenPositionDescriptor's bytecode: "__$" + first 34 hex
    ///      chars of keccak256 of that fully-qualified name + "$__".
    string internal constant NFT_DESCRIPTOR_PLACEHOLDER = "__$cea9be979eee3d87fb124d6cbb244bb0b5$__";

    function deploy(string memory artifact) internal returns (address) {
        return deploy(artifact, "");
    }

    function deploy(string memory artifact, bytes memory constructorArgs) internal returns (address) {
        return create(bytes.concat(vm.getCode(artifact), constructorArgs));
    }

    /// @notice The hex string at JSON path `key` (e.g. ".bytecode") of an artifact, as bytes.
    function jsonCode(string memory artifact, string memory key) internal view returns (bytes memory) {
        string memory hexCode = vm.parseJsonString(vm.readFile(artifact), key);
        bytes memory h = bytes(hexCode);
        if (h.length < 2 || h[0] != "0" || h[1] != "x") hexCode = string.concat("0x", hexCode);
        return vm.parseBytes(hexCode);
    }

    function create(bytes memory initCode) internal returns (address addr) {
        assembly ("memory-safe") {
            addr := create(0, add(initCode, 0x20), mload(initCode))
        }
        require(addr != address(0), "Artifacts: deployment failed");
    }

    /// @notice Creation code of a hardhat artifact with one library linked.
    function linkedCode(string memory artifact, string memory placeholder, address library_)
        internal
        view
        returns (bytes memory)
    {
        string memory hexCode = vm.parseJsonString(vm.readFile(artifact), ".bytecode");
        return vm.parseBytes(replaceAll(hexCode, placeholder, toHexNoPrefix(library_)));
    }

    function replaceAll(string memory s, string memory from, string memory to) internal pure returns (string memory) {
        bytes memory b = bytes(s);
        bytes memory f = bytes(from);
        bytes memory t = bytes(to);
        require(f.length == t.length && f.length > 0, "Artifacts: replacement length");
        uint256 hits = 0;
        for (uint256 i = 0; i + f.length <= b.length; ++i) {
            bool eq = true;
            for (uint256 j = 0; j < f.length; ++j) {
                if (b[i + j] != f[j]) {
                    eq = false;
                    break;
                }
            }
            if (eq) {
                for (uint256 j = 0; j < t.length; ++j) {
                    b[i + j] = t[j];
                }
                ++hits;
                i += f.length - 1;
            }
        }
        require(hits > 0, "Artifacts: placeholder not found");
        return string(b);
    }

    function toHexNoPrefix(address a) internal pure returns (string memory) {
        bytes memory digits = "0123456789abcdef";
        bytes memory out = new bytes(40);
        uint160 v = uint160(a);
        for (uint256 i = 40; i > 0; --i) {
            out[i - 1] = digits[v & 0xf];
            v >>= 4;
        }
        return string(out);
    }
}
