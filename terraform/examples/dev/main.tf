# A small, single-NAT dev cluster for hello-platform. Everything is fixed in
# locals so `terraform apply` needs no input; copy and edit for real use.

provider "aws" {
  region = local.region
}

locals {
  name   = "hello-dev"
  region = "eu-west-1"

  tags = {
    Project     = "hello-platform"
    Environment = "dev"
    ManagedBy   = "terraform"
  }
}

module "eks" {
  source = "../../modules/eks"

  name = local.name
  tags = local.tags

  az_count            = 2
  single_nat_gateway  = true
  node_instance_types = ["t3.large"]
  node_min_size       = 1
  node_max_size       = 3
  node_desired_size   = 2

  # A dev registry should not block `terraform destroy`.
  ecr_force_delete = true
}
