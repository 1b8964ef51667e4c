"""An independent NumPy computation of Magenta's Onsets-and-Frames graph from TF1 checkpoint variables.

Written from Magenta's model.py (slim conv2d SAME + batch norm (eps 1e-3, no scale) + ReLU, max-pool
1x2 VALID after conv1 and conv2, flatten, fc + ReLU; CudnnCompatibleLSTMCell = TF1 LSTM with kernel
rows [input; hidden], gate blocks (i, j, f, o), forget bias 0; bidirectional outputs [fw, bw];
frame stack input concat [onset_probs, activation_probs, offset_probs]).  Used as a test oracle.
"""

import numpy as np

PREFIX = "cudnn_lstm/stack_bidirectional_rnn/cell_0/bidirectional_rnn"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def conv2d_same(x, w):
    """x [T, F, Cin], w [3, 3, Cin, Cout] -> [T, F, Cout] (zero padding 'SAME')."""
    t, f, _ = x.shape
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((t, f, w.shape[3]), np.float64)
    for dt in range(3):
        for df in range(3):
            out += np.einsum("tfc,co->tfo", xp[dt:dt + t, df:df + f], w[dt, df])
    return out


def conv_stack(v, scope, mel):
    x = mel[:, :, None].astype(np.float64)
    for i in range(3):
        x = conv2d_same(x, v[f"{scope}/conv{i}/weights"])
        bn = f"{scope}/conv{i}/BatchNorm"
        x = (x - v[f"{bn}/moving_mean"]) / np.sqrt(v[f"{bn}/moving_variance"] + 1e-3) + v[f"{bn}/beta"]
        x = np.maximum(x, 0)
        if i > 0:
            x = x[:, : x.shape[1] // 2 * 2].reshape(x.shape[0], x.shape[1] // 2, 2, -1).max(axis=2)
    x = x.reshape(x.shape[0], -1)
    return np.maximum(x @ v[f"{scope}/fc_end/weights"] + v[f"{scope}/fc_end/biases"], 0)


def lstm_tf1(x, kernel, bias):
    units = kernel.shape[1] // 4
    h = np.zeros(units)
    c = np.zeros(units)
    out = []
    for xt in x:
        z = np.concatenate([xt, h]) @ kernel + bias
        i, j, f, o = np.split(z, 4)
        c = sigmoid(f + 0.0) * c + sigmoid(i) * np.tanh(j)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def bilstm(v, scope, x):
    cell = "cudnn_compatible_lstm_cell"
    fw = lstm_tf1(x, v[f"{scope}/{PREFIX}/fw/{cell}/kernel"], v[f"{scope}/{PREFIX}/fw/{cell}/bias"])
    bw = lstm_tf1(x[::-1], v[f"{scope}/{PREFIX}/bw/{cell}/kernel"], v[f"{scope}/{PREFIX}/bw/{cell}/bias"])[::-1]
    return np.concatenate([fw, bw], axis=1)


def dense(v, name, x):
    return x @ v[f"{name}/weights"] + v[f"{name}/biases"]


def reference_forward(v, mel):
    """Onset, offset, frame probabilities and velocities ``[T, 88]`` of one ``[T, 229]`` input."""
    onset = sigmoid(dense(v, "onsets/onset_probs", bilstm(v, "onsets", conv_stack(v, "onsets", mel))))
    offset = sigmoid(dense(v, "offsets/offset_probs", bilstm(v, "offsets", conv_stack(v, "offsets", mel))))
    velocity = dense(v, "velocity/onset_velocities", conv_stack(v, "velocity", mel))
    activation = sigmoid(dense(v, "frame/activation_probs", conv_stack(v, "frame", mel)))
    combined = np.concatenate([onset, activation, offset], axis=1)
    frame = sigmoid(dense(v, "frame/frame_probs", bilstm(v, "frame", combined)))
    return {"onset": onset, "offset": offset, "frame": frame, "velocity": velocity}
