// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Artifacts} from "./utils/Artifacts.sol";
import {
    IUniswapV3Factory,
    IUniswapV3Pool,
    INonfungiblePositionManager,
    ISwapRouter02,
    IQuoterV2,
    IWETH9,
    ISafe,
    ISafeProxyFactory
} from "./utils/Interfaces.sol";
import {TestERC20} from "../src/TestERC20.sol";

interface IMultiSend {
    function multiSend(bytes memory transactions) external payable;
}

interface ICompatibilityFallbackHandler {
    function getMessageHash(bytes memory message) external view returns (bytes32);
}

/// @notice Deploys the whole official stack from the npm artifacts (the same
///         files an off-chain deployer uses) and runs one flow through each part.
contract OfficialArtifactsTest is Test {
    uint24 internal constant FEE = 500;

    IWETH9 internal weth;
    IUniswapV3Factory internal factory;
    address internal descriptor;
    INonfungiblePositionManager internal npm;
    ISwapRouter02 internal router;
    IQuoterV2 internal quoter;
    TestERC20 internal tokenA;
    TestERC20 internal tokenB;

    function setUp() public {
        weth = IWETH9(Artifacts.deploy(Artifacts.WETH9));
        factory = IUniswapV3Factory(Artifacts.deploy(Artifacts.UNISWAP_V3_FACTORY));
        address nftDescriptorLib = Artifacts.deploy(Artifacts.NFT_DESCRIPTOR);
        descriptor = Artifacts.create(
            bytes.concat(
                Artifacts.linkedCode(
                    Artifacts.NONFUNGIBLE_TOKEN_POSITION_DESCRIPTOR,
                    Artifacts.NFT_DESCRIPTOR_PLACEHOLDER,
                    nftDescriptorLib
                ),
                abi.encode(address(weth), bytes32("ETH"))
            )
        );
        npm = INonfungiblePositionManager(
            Artifacts.deploy(
                Artifacts.NONFUNGIBLE_POSITION_MANAGER, abi.encode(address(factory), address(weth), descriptor)
            )
        );
        router = ISwapRouter02(
            Artifacts.deploy(
                Artifacts.SWAP_ROUTER_02, abi.encode(address(0), address(factory), address(npm), address(weth))
            )
        );
        quoter = IQuoterV2(Artifacts.deploy(Artifacts.QUOTER_V2, abi.encode(address(factory), address(weth))));
        tokenA = new TestERC20("Token A", "TKA", 18);
        tokenB = new TestERC20("Token B", "TKB", 18);
    }

    function test_weth9_bothArtifactsDeployAndWrap() public {
        IWETH9 other = IWETH9(Artifacts.create(Artifacts.jsonCode(Artifacts.WETH9_UNISWAP, ".bytecode")));
        vm.deal(address(this), 3 ether);
        weth.deposit{value: 1 ether}();
        other.deposit{value: 2 ether}();
        vm.assertEq(weth.balanceOf(address(this)), 1 ether);
        vm.assertEq(other.balanceOf(address(this)), 2 ether);
        weth.withdraw(1 ether);
        vm.assertEq(address(this).balance, 1 ether);
        vm.assertEq(weth.balanceOf(address(this)), 0);
    }

    receive() external payable {}

    function test_uniswapPeriphery_mintQuoteSwap() public {
        vm.assertEq(npm.factory(), address(factory));
        vm.assertEq(router.factory(), address(factory));
        vm.assertEq(router.positionManager(), address(npm));
        vm.assertEq(router.WETH9(), address(weth));

        (address t0, address t1) =
            address(tokenA) < address(tokenB) ? (address(tokenA), address(tokenB)) : (address(tokenB), address(tokenA));
        address pool = npm.createAndInitializePoolIfNecessary(t0, t1, FEE, 2 ** 96);
        vm.assertEq(pool, factory.getPool(t0, t1, FEE));

        tokenA.mint(address(this), 1e24);
        tokenB.mint(address(this), 1e24);
        tokenA.approve(address(npm), type(uint256).max);
        tokenB.approve(address(npm), type(uint256).max);
        (uint256 tokenId, uint128 liquidity, uint256 amount0, uint256 amount1) = npm.mint(
            INonfungiblePositionManager.MintParams({
                token0: t0,
                token1: t1,
                fee: FEE,
                tickLower: -1000,
                tickUpper: 1000,
                amount0Desired: 1e21,
                amount1Desired: 1e21,
                amount0Min: 0,
                amount1Min: 0,
                recipient: address(this),
                deadline: block.timestamp
            })
        );
        vm.assertEq(tokenId, 1);
        vm.assertGt(uint256(liquidity), 0);
        vm.assertEq(amount0, 1e21);
        vm.assertEq(amount1, 1e21);
        vm.assertEq(npm.ownerOf(tokenId), address(this));
        vm.assertEq(IUniswapV3Pool(pool).liquidity(), liquidity);
        // tokenURI runs the linked NFTDescriptor library.
        vm.assertGt(bytes(npm.tokenURI(tokenId)).length, 1000);

        (uint256 quoted,,,) = quoter.quoteExactInputSingle(
            IQuoterV2.QuoteExactInputSingleParams({
                tokenIn: t0, tokenOut: t1, amountIn: 1e18, fee: FEE, sqrtPriceLimitX96: 0
            })
        );
        vm.assertGt(quoted, 0);

        TestERC20(t0).approve(address(router), type(uint256).max);
        uint256 before = TestERC20(t1).balanceOf(address(0xBEEF));
        uint256 out = router.exactInputSingle(
            ISwapRouter02.ExactInputSingleParams({
                tokenIn: t0,
                tokenOut: t1,
                fee: FEE,
                recipient: address(0xBEEF),
                amountIn: 1e18,
                amountOutMinimum: quoted,
                sqrtPriceLimitX96: 0
            })
        );
        vm.assertEq(out, quoted);
        vm.assertEq(TestERC20(t1).balanceOf(address(0xBEEF)) - before, out);
    }

    uint256 internal constant OWNER_KEY = 0xA11CE;

    function _deploySafe(address handler) internal returns (ISafe safe) {
        address singleton = Artifacts.deploy(Artifacts.SAFE_L2);
        ISafeProxyFactory proxyFactory = ISafeProxyFactory(Artifacts.deploy(Artifacts.SAFE_PROXY_FACTORY));
        address[] memory owners = new address[](1);
        owners[0] = vm.addr(OWNER_KEY);
        bytes memory initializer =
            abi.encodeCall(ISafe.setup, (owners, 1, address(0), "", handler, address(0), 0, payable(address(0))));
        safe = ISafe(proxyFactory.createProxyWithNonce(singleton, initializer, 0));
    }

    /// @dev Signs and executes one Safe transaction (no refund) by the single owner.
    function _execSafeTx(ISafe safe, address to, bytes memory data, uint8 operation) internal returns (bool) {
        bytes memory signature = _sign(safe, to, data, operation);
        return safe.execTransaction(to, 0, data, operation, 0, 0, 0, address(0), payable(address(0)), signature);
    }

    function _sign(ISafe safe, address to, bytes memory data, uint8 operation) internal view returns (bytes memory) {
        uint256 nonce = safe.nonce();
        bytes32 txHash = safe.getTransactionHash(to, 0, data, operation, 0, 0, 0, address(0), address(0), nonce);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY, txHash);
        return abi.encodePacked(r, s, v);
    }

    function test_safe_singletonsAndLibrariesDeploy() public {
        vm.assertEq(ISafe(Artifacts.deploy(Artifacts.SAFE)).VERSION(), "1.4.1");
        vm.assertEq(ISafe(Artifacts.deploy(Artifacts.SAFE_L2)).VERSION(), "1.4.1");
        vm.assertGt(Artifacts.deploy(Artifacts.MULTI_SEND).code.length, 0);
        vm.assertGt(Artifacts.deploy(Artifacts.MULTI_SEND_CALL_ONLY).code.length, 0);
        vm.assertGt(Artifacts.deploy(Artifacts.COMPATIBILITY_FALLBACK_HANDLER).code.length, 0);
    }

    function test_safe_proxySetupAndFallbackHandler() public {
        address handler = Artifacts.deploy(Artifacts.COMPATIBILITY_FALLBACK_HANDLER);
        ISafe safe = _deploySafe(handler);
        vm.assertEq(safe.VERSION(), "1.4.1");
        vm.assertEq(safe.getThreshold(), 1);
        vm.assertEq(safe.getOwners().length, 1);
        vm.assertEq(safe.getOwners()[0], vm.addr(OWNER_KEY));
        // keccak256("fallback_manager.handler.address")
        bytes32 handlerSlot = 0x6c9a6c4a39284e37ed1cf53d337577d14212a4870fb976a4366c693b939918d5;
        vm.assertEq(vm.load(address(safe), handlerSlot), bytes32(uint256(uint160(handler))));
        vm.assertNotEq(ICompatibilityFallbackHandler(address(safe)).getMessageHash("hello"), bytes32(0));
    }

    function test_safe_execTransaction_delegatecallMultiSendCallOnly() public {
        ISafe safe = _deploySafe(Artifacts.deploy(Artifacts.COMPATIBILITY_FALLBACK_HANDLER));
        address multiSendCallOnly = Artifacts.deploy(Artifacts.MULTI_SEND_CALL_ONLY);
        tokenA.mint(address(safe), 100);

        // MultiSend batch: per call, packed (uint8 operation, address to,
        // uint256 value, uint256 dataLength, bytes data).
        bytes memory transfer1 = abi.encodeWithSelector(tokenA.transfer.selector, address(0xB0B), 30);
        bytes memory transfer2 = abi.encodeWithSelector(tokenA.transfer.selector, address(0xCA7), 70);
        bytes memory batch = abi.encodePacked(
            abi.encodePacked(uint8(0), address(tokenA), uint256(0), transfer1.length, transfer1),
            abi.encodePacked(uint8(0), address(tokenA), uint256(0), transfer2.length, transfer2)
        );
        // operation 1 = DELEGATECALL
        vm.assertTrue(_execSafeTx(safe, multiSendCallOnly, abi.encodeCall(IMultiSend.multiSend, (batch)), 1));
        vm.assertEq(safe.nonce(), 1);
        vm.assertEq(tokenA.balanceOf(address(0xB0B)), 30);
        vm.assertEq(tokenA.balanceOf(address(0xCA7)), 70);
        vm.assertEq(tokenA.balanceOf(address(safe)), 0);
    }

    function test_safe_multiSendRefusesDirectCalls() public {
        address multiSend = Artifacts.deploy(Artifacts.MULTI_SEND);
        vm.expectRevert(bytes("MultiSend should only be called via delegatecall"));
        IMultiSend(multiSend).multiSend("");
    }
}
