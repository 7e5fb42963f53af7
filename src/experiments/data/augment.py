"""Batch augmentation with per-sample random parameters (kornia), for training batches on the tensor path."""

from torch import nn

from experiments.config.errors import UserError


def build_augmenter(options: dict, hflip_default: bool, image_size: tuple[int, int]) -> nn.Module | None:
    """Flips, random crop with padding, a random affine map (translate, rotate, shear, scale) and random
    erasing, each switchable; None when augmentation is off."""
    if not options.get("enabled"):
        return None
    import kornia.augmentation as K

    steps: list[nn.Module] = []
    if options["hflip"] if options["hflip"] is not None else hflip_default:
        steps.append(K.RandomHorizontalFlip())
    if options["crop_padding"] > 0:
        steps.append(K.RandomCrop(image_size, padding=options["crop_padding"]))
    translate, scale, shear = options["translate"], options["scale"], options["shear"]
    if options["rotate"] > 0 or translate > 0 or scale > 0 or shear > 0:
        steps.append(
            K.RandomAffine(
                degrees=options["rotate"],
                translate=(translate, translate) if translate > 0 else None,
                scale=(1 - scale, 1 + scale) if scale > 0 else None,
                shear=shear if shear > 0 else None,
                p=1.0,
            )
        )
    if options.get("erase", 0.0) > 0:  # last: a blanked patch, not one moved about by the affine map
        steps.append(K.RandomErasing(p=options["erase"], value=0.0))
    if not steps:
        raise UserError("regularization.augment.enabled=true but every transform is off: turn one on")
    return nn.Sequential(*steps)
