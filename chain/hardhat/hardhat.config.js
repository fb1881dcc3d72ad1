// A Hardhat node for the tests that check the agents use only standard JSON-RPC (the seed's node).
// Same chain id and dev accounts as anvil: the mnemonic "test test ... junk".
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      mining: { auto: true },
      blockGasLimit: 1_000_000_000,
      accounts: { mnemonic: "test test test test test test test test test test test junk", count: 10 },
    },
  },
};
