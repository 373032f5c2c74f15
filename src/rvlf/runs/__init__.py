"""Tools around training runs, built on the recipes and run folders of `rvlf.train`.

    demo          `rvlf demo`: the three stages on the embedded demo corpus, on CPU, with a results table
                  (its configs are `demo_configs/`, also reachable as the repository's `configs/demo/`)
    report        `rvlf report`: the paper's tables (Tables 1-7 layouts) from finished run folders
    memory_plan   `rvlf plan-memory`: the memory of one training step from the configs alone
"""
