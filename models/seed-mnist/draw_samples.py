"""Draws the synthetic sample digits input_0/3/4.bin (28x28 raw pixels, like MNIST).

MNIST itself cannot be downloaded on the development machines; input_7.bin is the
seed's real handwritten 7. Run from this folder: python draw_samples.py
"""

import numpy as np

ROWS, COLS = np.mgrid[0:28, 0:28].astype(float)
STROKES = {
    0: [list(zip(14 + 8.5 * np.sin(t), 14 + 5.5 * np.cos(t))) for t in [np.linspace(0, 2 * np.pi, 40)]],
    3: [[(6, 9), (5, 18), (9, 19), (13, 13), (17, 20), (22, 17), (23, 9)]],
    4: [[(5, 10), (16, 8), (16, 20)], [(6, 17), (23, 17)]],
}


def draw(strokes, width=1.6):
    image = np.zeros((28, 28))
    for points in strokes:
        for (y0, x0), (y1, x1) in zip(points, points[1:]):
            for t in np.linspace(0, 1, 60):
                distance = np.hypot(ROWS - (y0 + (y1 - y0) * t), COLS - (x0 + (x1 - x0) * t))
                image = np.maximum(image, np.clip(255 * (1.0 - (distance - width) / 1.2), 0, 255))
    return image.astype(np.uint8)


if __name__ == "__main__":
    for digit, strokes in STROKES.items():
        with open(f"input_{digit}.bin", "wb") as out:
            out.write(draw(strokes).tobytes())
