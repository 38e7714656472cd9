"""genae: conditional generative autoencoders on MNIST, reproduced and measured.

    import genae
    model = genae.load("runs/cvae")            # rebuilt from config.json + model.safetensors
    images = model.sample(10, y=torch.arange(10))
"""

__version__ = "0.1.0"


def load(run_dir, device: str = "cpu"):
    """The trained model of a run directory (genae.rundir.load_model): a genae.models.base.Model in
    eval mode, whose `capabilities` say what it offers (encode, decode, sample, classify, …)."""
    from genae.rundir import load_model

    return load_model(run_dir, device)


__all__ = ["load", "__version__"]
