"""Show, attend and tell, small (Xu et al. 2015): a convolutional encoder turns an image into a
grid of feature vectors; a recurrent decoder writes the caption a token at a time and, before each
token, attends over the grid (soft attention) to choose where to look.

Shapes: B batch, C channels, H x W image, G = h x w grid cells, D feature width, E embedding,
K decoder units, T caption length, V vocabulary, N beams per image.

    e_ti = w^T tanh(W_f a_i + W_h h_{t-1})        alpha_t = softmax_i(e_t)       (additive score)
    z_t = beta_t * sum_i alpha_ti a_i,   beta_t = sigmoid(W_b h_{t-1})           (their gate, 4.2.1)
    h_t = cell([E y_{t-1}; z_t], h_{t-1})
    logits_t = L_o tanh(E y_{t-1} + L_h h_t + L_z z_t)                           (their deep output)
"""

from __future__ import annotations

import torch
from torch import nn

from ..cells import CELL_TYPES
from ..models.beam import Beams
from ..recurrent import Recurrent


class ConvEncoder(nn.Module):
    """`blocks` x [conv 3x3, batch norm, ReLU, conv 3x3, batch norm, ReLU, 2x2 max pool]: an
    (B, C, H, W) image -> (B, G, D) grid of features, D = channels x 2^(blocks-1) + 2. Each cell gets
    a learned vector added and its row and column (in [-1, 1]) appended, because convolution
    features say what is in a cell but hardly where, and reading in order needs where (measured on
    the toy shapes of the tests: 4 of 6 seeds learnt them without the coordinates, 6 of 6 with)."""

    def __init__(self, in_channels: int, height: int, width: int, channels: int = 32, blocks: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for k in range(blocks):
            c_out = channels * 2 ** k
            for c in (c_in, c_out):
                layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.grid = (height // 2 ** blocks, width // 2 ** blocks)  # (h, w)
        self.width = c_in + 2  # D: the channels and the cell's two coordinates
        self.position = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], c_in))
        h, w = self.grid
        rows = torch.linspace(-1, 1, h)[:, None].expand(h, w)
        columns = torch.linspace(-1, 1, w)[None, :].expand(h, w)
        self.register_buffer("coordinates", torch.stack([rows, columns], dim=2).reshape(1, h * w, 2),
                             persistent=False)  # (1, G, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.layers(images).flatten(2).transpose(1, 2) + self.position  # (B, G, D - 2)
        coordinates = self.coordinates.to(features.dtype).expand(features.shape[0], -1, -1)
        return torch.cat([features, coordinates], dim=2)  # (B, G, D)


class CaptionModel(nn.Module):
    def __init__(self, vocab_size: int, in_channels: int, height: int, width: int, conv_channels: int = 32,
                 conv_blocks: int = 3, cell: str = "lstm", hidden_size: int = 256, embedding_size: int = 64,
                 dropout: float = 0.0, bos: int = 2, eos: int = 3, row_encoder: bool = False) -> None:
        super().__init__()
        self.bos, self.eos = bos, eos
        self.encoder = ConvEncoder(in_channels, height, width, conv_channels, conv_blocks)
        D, K, E = self.encoder.width, hidden_size, embedding_size
        # Deng et al. 2017's row encoder: a bidirectional LSTM along each row of the grid, its outputs
        # appended to each cell's features, so a cell knows what lies left and right of it
        self.rows = Recurrent("lstm", D, D // 2, 1, bidirectional=True) if row_encoder else None
        D = D + 2 * (D // 2) if row_encoder else D
        self.embed = nn.Embedding(vocab_size, E, padding_idx=0)
        self.init_state = nn.Linear(D, K)  # the mean feature -> the decoder's first h and c (their 3.1.2)
        self.decoder = CELL_TYPES[cell](E + D, K)
        self.attend_features = nn.Linear(D, K)  # W_f
        self.attend_state = nn.Linear(K, K, bias=False)  # W_h
        self.attend_score = nn.Linear(K, 1, bias=False)  # w
        self.gate = nn.Linear(K, 1)  # W_b
        self.out_state, self.out_context = nn.Linear(K, E), nn.Linear(D, E, bias=False)  # L_h, L_z
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(E, vocab_size)  # L_o

    def encode(self, images: torch.Tensor):
        """-> features (B, G, D), their attention keys W_f a (B, G, K), the decoder's first state."""
        features = self.encoder(images)  # (B, G, D)
        if self.rows is not None:
            (h, w), B = self.encoder.grid, features.shape[0]
            along = self.rows(features.reshape(B * h, w, -1), final_state=False)[0]  # (B * h, w, 2 * (D // 2))
            features = torch.cat([features, along.reshape(B, h * w, -1)], dim=2)
        h = torch.tanh(self.init_state(features.mean(dim=1)))  # (B, K)
        state = tuple(h if i == 0 else torch.zeros_like(h) for i, _ in enumerate(self.decoder.state_names))
        return features, self.attend_features(features), state

    def step(self, token: torch.Tensor, state, features: torch.Tensor, keys: torch.Tensor):
        """token (B,) -> logits (B, V), the new state, the attention weights alpha (B, G) used."""
        h = state[0]
        scores = self.attend_score(torch.tanh(keys + self.attend_state(h)[:, None, :]))[:, :, 0]  # (B, G)
        alpha = torch.softmax(scores, dim=1)
        context = torch.sigmoid(self.gate(h)) * torch.bmm(alpha[:, None, :], features)[:, 0]  # (B, D)
        embedded = self.embed(token)  # (B, E)
        _, state = self.decoder.step(torch.cat([embedded, context], dim=1), state)
        hidden = torch.tanh(embedded + self.out_state(state[0]) + self.out_context(context))  # (B, E)
        return self.out(self.dropout(hidden)), state, alpha

    def forward(self, images: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: target_in (B, T) starts with BOS -> logits (B, T, V)."""
        features, keys, state = self.encode(images)
        logits = []
        for t in range(target_in.shape[1]):
            step_logits, state, _ = self.step(target_in[:, t], state, features, keys)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def decode(self, images: torch.Tensor, max_length: int, beams: int = 1) -> tuple[list[list[int]], list[torch.Tensor]]:
        """Beam search over all images at once (beams = 1: greedy): every step runs the N beams of
        all B images as one batch (models/beam.py keeps the beams).
        -> token ids per image (EOS left out), attention weights per image (T, G), one row per token."""
        search = Beams(images.shape[0], beams, self.bos, self.eos, images.device)
        features, keys, state = self.encode(images)
        features, keys, state = search.repeat(features), search.repeat(keys), tuple(search.repeat(s) for s in state)
        attention = features.new_zeros(features.shape[0], 0, features.shape[1])  # (B*N, t, G)
        for _ in range(max_length):
            logits, state, alpha = self.step(search.last, state, features, keys)
            origin = search.advance(logits)
            state = tuple(s[origin] for s in state)
            attention = torch.cat([attention[origin], alpha[origin][:, None, :]], dim=1)
            if search.done:
                break
        ids, maps = [], []
        for row, caption in search.best():
            ids.append(caption)
            maps.append(attention[row, :min(len(caption) + 1, attention.shape[1])].cpu())  # the EOS step too
        return ids, maps
