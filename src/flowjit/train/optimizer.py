"""TF1's optimizers, with TF1's exact update formulas, defaults and slot names.

`minimize(loss)` = `compute_gradients` (tf.gradients over the trainable variables) +
`apply_gradients` (one assignment per variable and slot, grouped into the train op).
Everything is ordinary graph ops, so the Session lowers the whole train step, gradients
included, into one IR function.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from flowjit import dtypes
from flowjit.graph.core import GraphKeys, Operation, Tensor, get_default_graph
from flowjit.ops import math, state
from flowjit.ops.base import convert_to_tensor
from flowjit.ops.gradients import gradients
from flowjit.variables import Variable, trainable_variables

GATE_NONE, GATE_OP, GATE_GRAPH = 0, 1, 2


class Optimizer:
    """Base class: subclasses define `_create_slots(var_list)` and `_apply_dense(grad, var)`
    (and optionally `_finish(update_ops)`), as in TF1."""

    GATE_NONE, GATE_OP, GATE_GRAPH = GATE_NONE, GATE_OP, GATE_GRAPH

    def __init__(self, use_locking: bool, name: str) -> None:
        if not name:
            raise ValueError("Must specify the optimizer name")
        self._name = name
        self._use_locking = use_locking
        self._slots: Dict[str, Dict[Variable, Variable]] = {}
        self._non_slot: Dict[str, Variable] = {}

    def get_name(self) -> str:
        return self._name

    # -- the TF1 API ------------------------------------------------------------------------
    def minimize(self, loss, global_step=None, var_list=None, gate_gradients=GATE_OP,
                 aggregation_method=None, colocate_gradients_with_ops=False, name=None,
                 grad_loss=None) -> Operation:
        grads_and_vars = self.compute_gradients(loss, var_list=var_list, grad_loss=grad_loss)
        if not any(g is not None for g, _ in grads_and_vars):
            raise ValueError(
                f"No gradients provided for any variable, check your graph for ops that do "
                f"not support gradients, between variables "
                f"{[v.name for _, v in grads_and_vars]} and loss {convert_to_tensor(loss)}.")
        return self.apply_gradients(grads_and_vars, global_step=global_step, name=name)

    def compute_gradients(self, loss, var_list=None, gate_gradients=GATE_OP,
                          aggregation_method=None, colocate_gradients_with_ops=False,
                          grad_loss=None) -> List[Tuple[Optional[Tensor], Variable]]:
        loss = convert_to_tensor(loss() if callable(loss) else loss)
        var_list = list(trainable_variables() if var_list is None else var_list)
        if not var_list:
            raise ValueError("No variables to optimize.")
        grads = gradients(loss, var_list, grad_ys=grad_loss)
        return list(zip(grads, var_list))

    def apply_gradients(self, grads_and_vars, global_step=None, name=None) -> Operation:
        pairs = [(g, v) for g, v in grads_and_vars]
        if not pairs:
            raise ValueError("No variables provided.")
        with_grads = [(g, v) for g, v in pairs if g is not None]
        if not with_grads:
            raise ValueError(f"No gradients provided for any variable: "
                             f"{[v.name for _, v in pairs]}")
        graph = get_default_graph()
        with graph.name_scope(None):
            self._create_slots([v for _, v in with_grads])
        with graph.name_scope(name or self._name) as scope:
            self._prepare()
            updates = [self._apply_dense(convert_to_tensor(g), v) for g, v in with_grads]
            # The train op carries the scope's name ('train', 'GradientDescent'), as in TF1.
            if global_step is None:
                update_op = self._finish(updates, scope)
            else:
                finished = self._finish(updates, "update")
                with graph.control_dependencies([finished]):
                    update_op = state.assign_add(global_step, 1, name=scope).op
        train_ops = graph.get_collection_ref(GraphKeys.TRAIN_OP)
        if update_op not in train_ops:
            train_ops.append(update_op)
        return update_op

    def get_slot(self, var: Variable, name: str) -> Optional[Variable]:
        return self._slots.get(name, {}).get(var)

    def get_slot_names(self) -> List[str]:
        return sorted(self._slots)

    def variables(self) -> List[Variable]:
        """The optimizer's own variables: slots and non-slot variables (Adam's beta powers)."""
        owned = [v for slots in self._slots.values() for v in slots.values()]
        owned.extend(self._non_slot.values())
        return sorted(owned, key=lambda v: v.name)

    # -- for subclasses ---------------------------------------------------------------------
    def _create_slots(self, var_list: Sequence[Variable]) -> None:
        pass

    def _prepare(self) -> None:
        pass

    def _apply_dense(self, grad: Tensor, var: Variable) -> Operation:
        raise NotImplementedError

    def _finish(self, update_ops: Sequence[Operation], name: str) -> Operation:
        return state.group(*update_ops, name=name)

    def _slot(self, var: Variable, slot_name: str, initial: float, suffix: str = "") -> Variable:
        """A variable shaped like `var`, named '<var>/<Optimizer><suffix>' as in TF1."""
        slots = self._slots.setdefault(slot_name, {})
        if var not in slots:
            from flowjit.ops.creation import fill
            from flowjit.ops.base import constant
            shape = var.shape.as_list()
            value = lambda: fill(shape, constant(initial, var.dtype))  # noqa: E731
            slots[var] = Variable(value, trainable=False, dtype=var.dtype,
                                  name=f"{var.op.name}/{self._name}{suffix}/")
        return slots[var]

    def _non_slot_variable(self, name: str, initial: float) -> Variable:
        if name not in self._non_slot:
            self._non_slot[name] = Variable(float(initial), trainable=False,
                                            dtype=dtypes.float32, name=name)
        return self._non_slot[name]

    def _hyper(self, value, var: Variable, name: str) -> Tensor:
        """A hyper-parameter (float, tensor, placeholder or callable) in the var's dtype.
        Python numbers become float32 first, then the var's dtype, exactly as in TF1 (so a
        float64 Adam uses float32(0.999), like TF1 does)."""
        value = value() if callable(value) else value
        if isinstance(value, (int, float)):
            tensor = convert_to_tensor(value, dtype=dtypes.float32, name=name)
        else:
            tensor = convert_to_tensor(value, dtype_hint=var.dtype, name=name)
        return tensor if tensor.dtype is var.dtype else math.cast(tensor, var.dtype)


class GradientDescentOptimizer(Optimizer):
    """var -= learning_rate * grad"""

    def __init__(self, learning_rate, use_locking=False, name="GradientDescent") -> None:
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate

    def _apply_dense(self, grad, var):
        lr = self._hyper(self._learning_rate, var, "learning_rate")
        return state.assign_sub(var, math.multiply(lr, grad)).op


class MomentumOptimizer(Optimizer):
    """accum = momentum * accum + grad; var -= lr * accum
    (Nesterov: var -= lr * (grad + momentum * accum))."""

    def __init__(self, learning_rate, momentum, use_locking=False, name="Momentum",
                 use_nesterov=False) -> None:
        super().__init__(use_locking, name)
        self._learning_rate, self._momentum, self._nesterov = learning_rate, momentum, use_nesterov

    def _create_slots(self, var_list):
        for v in var_list:
            self._slot(v, "momentum", 0.0)

    def _apply_dense(self, grad, var):
        lr = self._hyper(self._learning_rate, var, "learning_rate")
        mu = self._hyper(self._momentum, var, "momentum")
        accum = self.get_slot(var, "momentum")
        new_accum = state.assign(accum, math.add(math.multiply(accum, mu), grad))
        step = math.add(grad, math.multiply(mu, new_accum)) if self._nesterov else new_accum
        return state.assign_sub(var, math.multiply(lr, step)).op


class AdagradOptimizer(Optimizer):
    """accum += grad^2; var -= lr * grad / sqrt(accum)   (accum starts at 0.1)"""

    def __init__(self, learning_rate, initial_accumulator_value=0.1, use_locking=False,
                 name="Adagrad") -> None:
        if initial_accumulator_value <= 0.0:
            raise ValueError(f"initial_accumulator_value must be positive: "
                             f"{initial_accumulator_value}")
        super().__init__(use_locking, name)
        self._learning_rate, self._initial = learning_rate, initial_accumulator_value

    def _create_slots(self, var_list):
        for v in var_list:
            self._slot(v, "accumulator", self._initial)

    def _apply_dense(self, grad, var):
        lr = self._hyper(self._learning_rate, var, "learning_rate")
        accum = self.get_slot(var, "accumulator")
        new_accum = state.assign_add(accum, math.square(grad))
        return state.assign_sub(var, math.multiply(lr, math.multiply(
            grad, math.rsqrt(new_accum)))).op


class AdadeltaOptimizer(Optimizer):
    """accum = rho*accum + (1-rho)*g^2;
    update = sqrt(accum_update + eps) / sqrt(accum + eps) * g;
    accum_update = rho*accum_update + (1-rho)*update^2;  var -= lr * update"""

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-8, use_locking=False,
                 name="Adadelta") -> None:
        super().__init__(use_locking, name)
        self._learning_rate, self._rho, self._epsilon = learning_rate, rho, epsilon

    def _create_slots(self, var_list):
        for v in var_list:
            self._slot(v, "accum", 0.0)
            self._slot(v, "accum_update", 0.0, suffix="_1")

    def _apply_dense(self, grad, var):
        lr = self._hyper(self._learning_rate, var, "lr")
        rho = self._hyper(self._rho, var, "rho")
        eps = self._hyper(self._epsilon, var, "epsilon")
        one_minus_rho = math.subtract(1.0, rho)
        accum, accum_update = self.get_slot(var, "accum"), self.get_slot(var, "accum_update")
        new_accum = state.assign(accum, math.add(math.multiply(rho, accum),
                                                 math.multiply(one_minus_rho,
                                                               math.square(grad))))
        update = math.multiply(math.divide(math.sqrt(math.add(accum_update, eps)),
                                           math.sqrt(math.add(new_accum, eps))), grad)
        new_update = state.assign(accum_update, math.add(
            math.multiply(rho, accum_update), math.multiply(one_minus_rho, math.square(update))))
        with get_default_graph().control_dependencies([new_update]):
            return state.assign_sub(var, math.multiply(lr, update)).op


class RMSPropOptimizer(Optimizer):
    """ms = decay*ms + (1-decay)*g^2            (ms starts at 1.0, as in TF1)
    centered: mg = decay*mg + (1-decay)*g;  denominator ms - mg^2
    mom = momentum*mom + lr*g/sqrt(denominator + epsilon);  var -= mom"""

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10,
                 use_locking=False, centered=False, name="RMSProp") -> None:
        super().__init__(use_locking, name)
        self._learning_rate, self._decay = learning_rate, decay
        self._momentum, self._epsilon, self._centered = momentum, epsilon, centered

    def _create_slots(self, var_list):
        for v in var_list:  # TF1's creation order, which decides the _1/_2 names
            self._slot(v, "rms", 1.0)
            if self._centered:
                self._slot(v, "mg", 0.0, suffix="_1")
            self._slot(v, "momentum", 0.0, suffix="_2" if self._centered else "_1")

    def _apply_dense(self, grad, var):
        lr = self._hyper(self._learning_rate, var, "learning_rate")
        decay = self._hyper(self._decay, var, "decay")
        mu = self._hyper(self._momentum, var, "momentum")
        eps = self._hyper(self._epsilon, var, "epsilon")
        one_minus_decay = math.subtract(1.0, decay)
        ms, mom = self.get_slot(var, "rms"), self.get_slot(var, "momentum")
        new_ms = state.assign(ms, math.add(math.multiply(decay, ms),
                                           math.multiply(one_minus_decay, math.square(grad))))
        denominator = new_ms
        if self._centered:
            mg = self.get_slot(var, "mg")
            new_mg = state.assign(mg, math.add(math.multiply(decay, mg),
                                               math.multiply(one_minus_decay, grad)))
            denominator = math.subtract(new_ms, math.square(new_mg))
        new_mom = state.assign(mom, math.add(
            math.multiply(mu, mom),
            math.divide(math.multiply(lr, grad), math.sqrt(math.add(denominator, eps)))))
        return state.assign_sub(var, new_mom).op


class AdamOptimizer(Optimizer):
    """lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g^2
    var -= lr_t * m / (sqrt(v) + epsilon)     (epsilon outside the sqrt, as in TF1)"""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 use_locking=False, name="Adam") -> None:
        super().__init__(use_locking, name)
        self._learning_rate, self._beta1, self._beta2 = learning_rate, beta1, beta2
        self._epsilon = epsilon

    def _create_slots(self, var_list):
        self._non_slot_variable("beta1_power", self._beta1)
        self._non_slot_variable("beta2_power", self._beta2)
        for v in var_list:
            self._slot(v, "m", 0.0)
            self._slot(v, "v", 0.0, suffix="_1")

    def _apply_dense(self, grad, var):
        lr = self._hyper(self._learning_rate, var, "learning_rate")
        beta1 = self._hyper(self._beta1, var, "beta1")
        beta2 = self._hyper(self._beta2, var, "beta2")
        eps = self._hyper(self._epsilon, var, "epsilon")
        beta1_power = math.cast(self._non_slot["beta1_power"], var.dtype)
        beta2_power = math.cast(self._non_slot["beta2_power"], var.dtype)
        lr_t = math.multiply(lr, math.divide(math.sqrt(math.subtract(1.0, beta2_power)),
                                             math.subtract(1.0, beta1_power)))
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        new_m = state.assign(m, math.add(math.multiply(beta1, m),
                                         math.multiply(math.subtract(1.0, beta1), grad)))
        new_v = state.assign(v, math.add(math.multiply(beta2, v),
                                         math.multiply(math.subtract(1.0, beta2),
                                                       math.square(grad))))
        step = math.divide(math.multiply(lr_t, new_m), math.add(math.sqrt(new_v), eps))
        return state.assign_sub(var, step).op

    def _finish(self, update_ops, name):
        graph = get_default_graph()
        with graph.control_dependencies(update_ops):
            b1, b2 = self._non_slot["beta1_power"], self._non_slot["beta2_power"]
            update_b1 = state.assign(b1, math.multiply(b1, float(self._beta1)))
            update_b2 = state.assign(b2, math.multiply(b2, float(self._beta2)))
        return state.group(*update_ops, update_b1, update_b2, name=name)
