// Log expected improvement (Ament et al. 2023, "Unexpected improvements to
// expected improvement"): the log of EI computed without underflow, so the
// acquisition keeps a useful gradient far from the incumbent, where plain EI
// is exactly zero in floating point and optimizers stall.
#pragma once

namespace gangway::tuner {

// log h(z) with h(z) = phi(z) + z Phi(z); EI = sigma h((best - mu) / sigma)
// for minimization.
double LogH(double z);
// d log h / dz = Phi(z) / h(z).
double DLogH(double z);

}  // namespace gangway::tuner
