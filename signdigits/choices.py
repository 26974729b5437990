"""The names params.yaml chooses from, each list defined once: the model code dispatches on them, params.py checks
params.yaml against them, and the dataset reader knows the digit folders by them. It imports nothing, so a stage
that only checks params does not depend on the model code."""

DIGITS = tuple(str(d) for d in range(10))  # the dataset's classes: folder names, labels, filter.classes
MODELS = ("mlp", "cnn")  # train.model: signdigits/mlp.py, signdigits/cnn.py (training.build_model)
ACTIVATIONS = ("sigmoid", "tanh", "relu")  # train.activation (network.activate)
OPTIMIZERS = ("sgd", "adam")  # train.optimizer (optim.make_optimizer)
# train.augment_perturb: families of signdigits/perturbations.py (mirror has its own switch, train.augment_mirror)
PERTURBATIONS = (
    *("rotate", "shift", "scale", "brighten", "darken", "contrast"),
    *("gamma", "noise", "blur", "occlude", "background"),
)
REFUSAL_SCORES = ("msp", "energy", "mahalanobis")  # refusal.score (refusal.py)
