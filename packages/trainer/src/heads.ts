import { BatchNorm1d, Linear, Module, relu, type Tensor } from '@mode/autograd';
import { seeds } from '@mode/models';

/**
 * nn.Sequential-style stack: Linear and BatchNorm1d layers named by position, a ReLU counting as
 * a position too (`projector.0`, `projector.1`, `projector.3`, …), as PyTorch would name them.
 */
class Sequential extends Module {
  private readonly steps: ((x: Tensor) => Tensor)[] = [];
  constructor(layers: (Linear | BatchNorm1d | 'relu')[]) {
    super();
    layers.forEach((l, i) => {
      if (l === 'relu') this.steps.push(relu);
      else {
        const m = this.module(String(i), l);
        this.steps.push((x) => m.forward(x));
      }
    });
  }
  forward(x: Tensor): Tensor {
    return this.steps.reduce((h, f) => f(h), x);
  }
}

/**
 * DeCLIP's image self-supervision heads (SimSiam): projector 3 × (Linear + BN), ReLU between;
 * predictor Linear + BN + ReLU → Linear with a bottleneck of dim/4. They read the image
 * embedding (before normalisation).
 */
export class SimSiamHeads extends Module {
  readonly projector: Sequential;
  readonly predictor: Sequential;
  constructor(dim: number, seed?: number) {
    super();
    const s = seeds(seed);
    const lin = (i: number, o: number) => new Linear(i, o, { seed: s() });
    const hidden = Math.max(8, Math.round(dim / 4));
    this.projector = this.module(
      'projector',
      new Sequential([lin(dim, dim), new BatchNorm1d(dim), 'relu', lin(dim, dim), new BatchNorm1d(dim), 'relu', lin(dim, dim), new BatchNorm1d(dim)]),
    );
    this.predictor = this.module('predictor', new Sequential([lin(dim, hidden), new BatchNorm1d(hidden), 'relu', lin(hidden, dim)]));
  }
}

/** DeCLIP's text self-supervision head: the text tower's token features [M, width] → vocabulary logits. */
export class MlmHead extends Module {
  readonly head: Linear;
  constructor(width: number, vocab: number, seed?: number) {
    super();
    this.head = this.module('head', new Linear(width, vocab, { seed: seeds(seed)() }));
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(x);
  }
}

/** The trained heads beside the CLIP model (saved in checkpoints, not in final.safetensors). */
export class DeclipHeads extends Module {
  readonly ssl: SimSiamHeads | null;
  readonly mlm: MlmHead | null;
  constructor(o: { embedDim: number; textWidth: number; vocab: number; ssl: boolean; mlm: boolean; seed?: number }) {
    super();
    const s = seeds(o.seed);
    this.ssl = o.ssl ? this.module('ssl', new SimSiamHeads(o.embedDim, s())) : null;
    this.mlm = o.mlm ? this.module('mlm', new MlmHead(o.textWidth, o.vocab, s())) : null;
  }
}
