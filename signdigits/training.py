"""Building and training the network from the ``train`` params, with a tqdm progress bar on stderr."""

from signdigits.augment import augmenter
from signdigits.cnn import CNN
from signdigits.mlp import MLP


def build_model(params, n_inputs, n_classes):
    """The network the params describe (train.model: mlp or cnn): one sigmoid output for two classes, K softmax
    outputs for K > 2. hidden_units is the MLP's hidden layer, or the CNN's dense layer."""
    n_outputs = 1 if n_classes == 2 else n_classes
    if params["model"] == "cnn":
        return CNN(
            n_inputs,
            n_outputs,
            channels=params["conv_channels"],
            kernel_size=params["kernel_size"],
            n_hidden=params["hidden_units"],
            activation=params["activation"],
            seed=params["seed"],
            standardize=params["standardize"],
        )
    return MLP(
        n_inputs,
        params["hidden_units"],
        n_outputs,
        params["activation"],
        params["seed"],
        standardize=params["standardize"],
    )


def train(params, X_train, y_train, X_val=None, y_val=None, n_classes=2, progress="train", on_epoch=None):
    """Train a fresh model on (X_train, y_train); (X_val, y_val), if given, is only scored after each epoch (the
    history's val_* columns). ``progress``: the label of a tqdm bar on stderr, shown only on a terminal (None: no
    bar). ``on_epoch(row)`` is called with each history row."""
    from tqdm import tqdm

    net = build_model(params, X_train.shape[1], n_classes)
    with tqdm(total=params["epochs"], desc=progress, unit="epoch", disable=None if progress else True) as bar:

        def after_epoch(row):
            shown = {"loss": f"{row['train_loss']:.4f}", "acc": f"{row['train_accuracy']:.3f}"}
            if "val_loss" in row:
                shown |= {"val_loss": f"{row['val_loss']:.4f}", "val_acc": f"{row['val_accuracy']:.3f}"}
            bar.set_postfix(shown, refresh=False)
            bar.update()
            if on_epoch is not None:
                on_epoch(row)

        history = net.fit(
            X_train,
            y_train,
            epochs=params["epochs"],
            batch_size=params["batch_size"],
            learning_rate=params["learning_rate"],
            X_val=X_val,
            y_val=y_val,
            optimizer=params["optimizer"],
            momentum=params["momentum"],
            weight_decay=params["weight_decay"],
            lr_decay=params["lr_decay"],
            augment=augmenter(params["augment_shift"]),
            on_epoch=after_epoch,
        )
    return net, history
