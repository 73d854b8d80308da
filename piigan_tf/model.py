"""PiiGAN as a Keras model: networks, WGAN-GP critic steps, generator+extractor step."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from piigan_tf import losses as L
from piigan_tf.distribute import from_batch_major
from piigan_tf.layers.ops import crop_boxes, paste_boxes
from piigan_tf.networks import Extractor, Generator, global_critic, local_critic, sample_z

D_TERMS = ("d_loss", "d_wgan", "d_local", "d_global", "gp_loss", "gp_local", "gp_global")
G_TERMS = ("g_loss", "g_adv", "g_local", "g_global", "ae", "ae_zx", "l1_zx", "regress_z", "kl")


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Loss weights, with the reference's setting.yml defaults."""

    gan: float = 0.001                 # GAN_LOSS_ALPHA
    wgan_gp_lambda: float = 10.0       # WGAN_GP_LAMBDA
    coarse_l1: float = 1.2             # COARSE_L1_ALPHA
    ae: float = 1.2                    # AE_LOSS_ALPHA
    kl: float = 0.1                    # LOSS_KL
    regress_z: float = 1.2             # REGRESSION_Z_LOSS_ALPHA
    global_wgan: float = 1.0           # GLOBAL_WGAN_LOSS_ALPHA
    use_ae: bool = True                # AE_LOSS
    use_regress_z: bool = True         # REGRESSION_Z_LOSS

    @classmethod
    def from_config(cls, c) -> "LossWeights":
        return cls(gan=c.GAN_LOSS_ALPHA, wgan_gp_lambda=c.WGAN_GP_LAMBDA,
                   coarse_l1=c.COARSE_L1_ALPHA, ae=c.AE_LOSS_ALPHA, kl=c.LOSS_KL,
                   regress_z=c.REGRESSION_Z_LOSS_ALPHA, global_wgan=c.GLOBAL_WGAN_LOSS_ALPHA,
                   use_ae=c.AE_LOSS, use_regress_z=c.REGRESSION_Z_LOSS)


def _clip_by_average_norm(grads, clip):
    """TF1's ``clip_by_average_norm`` (the reference's GRADIENT_CLIP option)."""
    out = []
    for g in grads:
        if g is None:
            out.append(g)
            continue
        avg = tf.norm(g) / tf.cast(tf.size(g), g.dtype)
        out.append(g * clip / tf.maximum(avg, clip))
    return out


class PiiGAN(keras.Model):
    """Pluralistic image inpainting GAN (Cai & Wei, IEEE Access 2020).

    Holds the generator (``inpaint_net``), the style extractor
    (``build_extractor``) and the two WGAN-GP critics. ``train_step`` performs
    one reference iteration: ``d_steps`` critic steps, each on its own batch,
    then one step of generator + extractor.

    Training data: a dict ``{"images", "masks", "boxes"}`` whose tensors have
    a leading dimension of ``d_steps + 1`` batches (``[K, B, H, W, 3]`` etc.;
    see ``piigan_tf.data.build_dataset(group=...)``). The last batch feeds
    the generator step. Optional keys ``"z"`` ([K, B, H, W, 1]), ``"alpha"``
    ([K, B, 2]: the local and the global penalty's interpolation weights) and
    ``"eps"`` ([B, h*w]) supply the noise; without them it is drawn from the
    model's own seeded generator.

    Calling the model, ``model((images, masks))`` or
    ``model((images, masks, z))``, returns the completed images (refined
    output pasted into the known pixels), [B, H, W, 3] in [-1, 1].

    Args:
        img_hw, box_hw: image and hole-box size.
        d_steps: critic steps per generator step (the reference's 5).
        weights: the loss weights (default: the reference's).
        extractor_activation: ``"elu"`` (paper) or ``"leaky_relu"`` (reference code).
        gradient_clip: clip value of the reference's GRADIENT_CLIP, or None.
        seed: seed of the model's own noise generator.
        precision: compute dtype of the networks: ``"float32"`` (default),
            ``"bfloat16"`` or ``"float16"`` (mixed precision; variables stay
            float32; float16 needs loss-scaled optimizers).
        fast_paths: False runs the generator's plain conv formulations
            (``piigan_tf.layers.fast_conv``; for benchmarks and equivalence tests).
        native_dilation: force (True) or forbid (False) the Conv2D op's own
            dilation; None probes the running TensorFlow.
    """

    def __init__(self, img_hw=(128, 128), box_hw=(64, 64), d_steps: int = 5,
                 weights: LossWeights | None = None, extractor_activation: str = "elu",
                 gradient_clip: float | None = None, seed: int = 0,
                 precision: str | None = None, fast_paths: bool = True,
                 native_dilation: bool | None = None, name: str = "piigan", **kwargs):
        super().__init__(name=name, **kwargs)
        if precision not in (None, "float32", "bfloat16", "float16"):
            raise ValueError(f"precision must be float32, bfloat16 or float16, got {precision!r}")
        #: Compute dtype of the four networks; their variables stay float32.
        self.precision = precision or "float32"
        policy = "float32" if self.precision == "float32" else f"mixed_{self.precision}"
        self.img_hw = tuple(int(v) for v in img_hw)
        self.box_hw = tuple(int(v) for v in box_hw)
        self.d_steps = int(d_steps)
        self.loss_weights_ = weights or LossWeights()
        self.gradient_clip = gradient_clip
        self.seed = int(seed)
        self.generator = Generator(fast_paths=fast_paths, native_dilation=native_dilation,
                                   dtype=policy)
        self.extractor = Extractor(self.box_hw, extractor_activation, dtype=policy)
        self.local_critic = local_critic(self.box_hw, dtype=policy)
        self.global_critic = global_critic(self.img_hw, dtype=policy)
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        # Tracked so that checkpoints of the model restore the noise stream.
        self.noise_state = self.seed_generator.state.value
        self.trackers = {n: keras.metrics.Mean(name=n) for n in D_TERMS + G_TERMS}

    @classmethod
    def from_config_object(cls, config, **kwargs) -> "PiiGAN":
        """Builds the model from a ``piigan_tf.config.Config``.

        ``kwargs`` (``precision``, ``fast_paths``, ``native_dilation``) go to
        the constructor. For a model to train, use
        ``piigan_tf.builders.build_piigan``: it also compiles the optimizers.
        """
        return cls(img_hw=config.img_hw, box_hw=config.box_hw, d_steps=config.D_STEPS,
                   weights=LossWeights.from_config(config),
                   extractor_activation=config.EXTRACTOR_ACTIVATION,
                   gradient_clip=config.GRADIENT_CLIP_VALUE if config.GRADIENT_CLIP else None,
                   seed=config.SEED, **kwargs)

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        h, w = self.img_hw
        self.generator.build([(None, h, w, 3), (None, h, w, 1), (None, h, w, 1)])
        self.extractor.build((None, *self.box_hw, 3))
        self.local_critic.build((None, *self.box_hw, 3))
        self.global_critic.build((None, h, w, 3))
        self.built = True

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Sets the two optimizers (default: Adam 1e-4, beta1 0.5, beta2 0.9, as the reference).

        ``kwargs`` go to ``keras.Model.compile`` (e.g. ``jit_compile``); the
        model has no ``optimizer`` of Keras' own (``train_step`` uses these two).
        """
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = g_optimizer or default_optimizer("g_optimizer")
        self.d_optimizer = d_optimizer or default_optimizer("d_optimizer")
        if not self.built:
            self.build()
        self.g_optimizer.build(self.generator_variables)
        self.d_optimizer.build(self.critic_variables)

    @property
    def generator_variables(self):
        # The reference trains only inpaint_net with the generator optimizer;
        # the port adds the extractor (the paper trains it; see README).
        return self.generator.trainable_variables + self.extractor.trainable_variables

    @property
    def critic_variables(self):
        return self.local_critic.trainable_variables + self.global_critic.trainable_variables

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ------------------------------------------------------------ inference
    def call(self, inputs, training=False):
        images, masks = inputs[0], inputs[1]
        z = inputs[2] if len(inputs) > 2 else None
        masks = tf.cast(masks, tf.float32)
        incomplete = tf.cast(images, tf.float32) * (1.0 - masks)
        if z is None:
            z = keras.random.normal(tf.shape(masks), seed=self.seed_generator)
        _, refined = self._generate(incomplete, masks, z)
        return refined * masks + incomplete * (1.0 - masks)

    def visualize(self, images, masks, z=None):
        """[real, incomplete, completed, x2, x1] for image grids, each [B, H, W, 3]."""
        images = tf.cast(images, tf.float32)
        masks = tf.cast(masks, tf.float32)
        if z is None:
            z = keras.random.normal(tf.shape(masks), seed=self.seed_generator)
        incomplete, coarse, refined, completed = self._complete(images, masks, z)
        return [images, incomplete, completed, refined, coarse]

    def complete_fixed(self, images, masks, seed: int = 0):
        """Completion with noise from a fixed seed (same z every call)."""
        z = tf.random.stateless_normal(tf.shape(masks), seed=[seed, 0])
        return self((images, masks, z))

    # -------------------------------------------------------------- training
    @staticmethod
    def _replica_share(loss, summed=0.0):
        """This replica's share of the global-batch ``loss``: what its gradient is taken of.

        Gradients are summed over replicas, so the parts of ``loss`` that are
        per-replica means are divided by the number of replicas (the shares
        then add up to the mean over the global batch); ``summed``, the part
        that is already a sum over the batch (the KL term), is left as it is.
        On one device the share is ``loss`` itself.
        """
        n = tf.distribute.get_strategy().num_replicas_in_sync
        if n == 1:
            return loss
        return (loss - summed) / n + summed

    @staticmethod
    def _cross_replica(values: dict, sums=()) -> dict:
        """Global-batch values of per-replica scalars (one all-reduce for all).

        Per-replica means become the mean over replicas (= the global-batch
        mean, replicas holding equal shares); names in ``sums`` are added up.
        Outside a multi-replica step the values are returned as they are.
        """
        n = tf.distribute.get_strategy().num_replicas_in_sync
        ctx = tf.distribute.get_replica_context()
        if n == 1 or ctx is None:
            return values
        names = list(values)
        stacked = tf.stack([tf.cast(values[k], tf.float32) * (1.0 if k in sums else 1.0 / n)
                            for k in names])
        reduced = tf.unstack(ctx.all_reduce(tf.distribute.ReduceOp.SUM, stacked))
        return dict(zip(names, reduced))

    def _apply(self, optimizer, loss, variables, tape):
        # ``loss`` comes already through optimizer.scale_loss (recorded on the
        # tape): loss scaling under float16 mixed precision, a no-op otherwise.
        grads = tape.gradient(loss, variables)
        if self.gradient_clip:
            n = tf.distribute.get_strategy().num_replicas_in_sync
            ctx = tf.distribute.get_replica_context()
            if n > 1 and ctx is not None:
                # Clip the global gradient, not each replica's share: sum here,
                # and pass 1/n of it to apply(), which sums over replicas again.
                grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
                grads = [g / n for g in _clip_by_average_norm(grads, self.gradient_clip)]
            else:
                grads = _clip_by_average_norm(grads, self.gradient_clip)
        optimizer.apply(grads, variables)

    def _generate(self, incomplete, masks, z):
        """``(coarse, refined)``, the generator's two stages, in float32 (any compute dtype)."""
        coarse, refined = self.generator((incomplete, masks, z))
        return tf.cast(coarse, tf.float32), tf.cast(refined, tf.float32)

    def _extract(self, boxes):
        """``(mu, logvar)`` of the extractor on ``boxes``, in float32 (any compute dtype)."""
        mu, logvar = self.extractor(boxes)
        return tf.cast(mu, tf.float32), tf.cast(logvar, tf.float32)

    def _complete(self, images, masks, z):
        incomplete = images * (1.0 - masks)
        coarse, refined = self._generate(incomplete, masks, z)
        completed = refined * masks + incomplete * (1.0 - masks)
        return incomplete, coarse, refined, completed

    def critic_step(self, images, masks, boxes, z, alpha):
        """One WGAN-GP step of both critics on one batch. Returns the loss terms.

        ``alpha`` [B, 2] holds each sample's interpolation weight for the local
        (``[:, 0]``) and the global (``[:, 1]``) gradient penalty: two draws,
        as the reference calls ``random_interpolates`` once per critic.
        """
        bh, bw = self.box_hw
        # The generator is not trained here, so run it outside the tape.
        _, _, _, completed = self._complete(images, masks, z)
        completed = tf.stop_gradient(completed)
        real_box = crop_boxes(images, boxes, bh, bw)
        fake_box = crop_boxes(completed, boxes, bh, bw)
        mask_box = crop_boxes(masks, boxes, bh, bw)
        with tf.GradientTape() as tape:
            n = tf.shape(images)[0]
            local = self.local_critic(tf.concat([real_box, fake_box], 0))
            glob = self.global_critic(tf.concat([images, completed], 0))
            _, d_local = L.wgan_losses(local[:n], local[n:])
            _, d_global = L.wgan_losses(glob[:n], glob[n:])
            gp_local = L.gradient_penalty(
                self.local_critic, L.random_interpolates(real_box, fake_box, alpha[:, 0]),
                mask_box)
            gp_global = L.gradient_penalty(
                self.global_critic, L.random_interpolates(images, completed, alpha[:, 1]), masks)
            gp = self.loss_weights_.wgan_gp_lambda * (gp_local + gp_global)
            d_wgan = d_global + d_local
            d_loss = d_wgan + gp
            scaled = self.d_optimizer.scale_loss(self._replica_share(d_loss))
        self._apply(self.d_optimizer, scaled, self.critic_variables, tape)
        return self._cross_replica(
            {"d_loss": d_loss, "d_wgan": d_wgan, "d_local": d_local, "d_global": d_global,
             "gp_loss": gp, "gp_local": gp_local, "gp_global": gp_global})

    def generator_step(self, images, masks, boxes, z, eps):
        """One step of generator + extractor on one batch. Returns the loss terms."""
        w = self.loss_weights_
        bh, bw = self.box_hw
        real_box = crop_boxes(images, boxes, bh, bw)
        # The L1 losses divide by the known-pixel fraction: take it over the
        # global batch so a distributed step equals the single-device one.
        known = self._cross_replica({"known": tf.reduce_mean(1.0 - masks)})["known"]
        with tf.GradientTape() as tape:
            incomplete, coarse, refined, completed = self._complete(images, masks, z)
            fake_box = crop_boxes(completed, boxes, bh, bw)
            g_local, _ = L.wgan_losses(0.0, self.local_critic(fake_box))
            g_global, _ = L.wgan_losses(0.0, self.global_critic(completed))
            g_adv = w.global_wgan * g_global + g_local
            # The extractor reads the real box (for z_real and the KL term)
            # and the completed box (to regress the z that produced it).
            mu, logvar = self._extract(tf.concat([real_box, fake_box], 0))
            n = tf.shape(images)[0]
            mu_real, mu_fake, logvar_real = mu[:n], mu[n:], logvar[:n]
            z_real = sample_z(mu_real, logvar_real, eps)
            z_real = paste_boxes(tf.reshape(z_real, [-1, bh, bw, 1]), boxes, self.img_hw)
            coarse_r, refined_r = self._generate(incomplete, masks, z_real)
            terms = {
                "g_adv": g_adv, "g_local": g_local, "g_global": g_global,
                "ae": L.masked_l1(images, coarse, refined, masks, w.coarse_l1, known),
                "ae_zx": L.masked_l1(images, coarse_r, refined_r, masks, w.coarse_l1, known),
                "l1_zx": L.box_l1(real_box, crop_boxes(coarse_r, boxes, bh, bw),
                                  crop_boxes(refined_r, boxes, bh, bw), w.coarse_l1),
                "regress_z": L.regress_z(mu_fake, crop_boxes(z, boxes, bh, bw), w.regress_z),
                "kl": L.kl_divergence(mu_real, logvar_real),
            }
            g_loss = L.generator_total(terms, w.gan, w.kl, w.regress_z, w.ae,
                                       w.use_ae, w.use_regress_z)
            # KL is a sum over the batch (as the reference): the replicas' sums
            # add up to the global sum, so it is left out of the rescaling; the
            # shares of all replicas add up to the global g_loss.
            terms["g_loss"] = self._replica_share(g_loss, summed=w.kl * terms["kl"])
            scaled = self.g_optimizer.scale_loss(terms["g_loss"])
        self._apply(self.g_optimizer, scaled, self.generator_variables, tape)
        return self._cross_replica(terms, sums=("kl", "g_loss"))

    def draw_noise(self, images_shape):
        """Noise for one iteration: z [K,B,H,W,1], alpha [K,B,2], eps [B, h*w]."""
        k, b, h, w = images_shape[0], images_shape[1], images_shape[2], images_shape[3]
        z = keras.random.normal([k, b, h, w, 1], seed=self.seed_generator)
        alpha = keras.random.uniform([k, b, 2], seed=self.seed_generator)
        eps = keras.random.normal([b, self.box_hw[0] * self.box_hw[1]], seed=self.seed_generator)
        return z, alpha, eps

    def train_step(self, data):
        """One iteration on ``data`` (see the class docstring); returns the loss means.

        Under a strategy with several replicas each replica's share arrives
        batch-major (``[B/n, K, ...]``: ``tf.distribute`` splits elements
        along their first axis; ``Trainer`` feeds it so) and is transposed back.
        """
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            data = from_batch_major(data)
        images = tf.cast(data["images"], tf.float32)
        masks = tf.cast(data["masks"], tf.float32)
        boxes = tf.cast(data["boxes"], tf.int32)
        if "z" in data:
            z, alpha, eps = data["z"], data["alpha"], data["eps"]
        else:
            z, alpha, eps = self.draw_noise(tf.shape(images))
        k = images.shape[0]
        if k is not None and k != self.d_steps + 1:
            raise ValueError(f"train_step expects d_steps + 1 = {self.d_steps + 1} batches "
                             f"per element (leading dimension), got {k}")
        # 1. critic steps, each on a fresh batch (as the reference).
        d_sums = None
        for i in range(self.d_steps):
            d_terms = self.critic_step(images[i], masks[i], boxes[i], z[i], alpha[i])
            d_sums = d_terms if d_sums is None else {n: d_sums[n] + d_terms[n] for n in d_sums}
        # 2. generator + extractor step on the last batch.
        g_terms = self.generator_step(images[-1], masks[-1], boxes[-1], z[-1], eps)
        for n in D_TERMS:
            self.trackers[n].update_state(d_sums[n] / self.d_steps)
        for n in G_TERMS:
            self.trackers[n].update_state(g_terms[n])
        return {n: t.result() for n, t in self.trackers.items()}


def default_optimizer(name: str, learning_rate: float = 1e-4, beta_1: float = 0.5,
                      beta_2: float = 0.9) -> keras.optimizers.Optimizer:
    """Adam with the reference's settings (``tf.train.AdamOptimizer(lr, 0.5, 0.9)``).

    Its epsilon is TF1's default, 1e-8 (Keras' default is 1e-7). Same update
    as TF1's fused ``ApplyAdam`` kernel, written as Keras' element-wise ops
    (a fused kernel through Keras internals gained 0.5-1.8 % of an iteration,
    within this machine's noise: docs/performance.md).
    """
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                                 epsilon=1e-8, name=name)
