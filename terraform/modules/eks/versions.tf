terraform {
  # 1.9 is the first release whose validation blocks may refer to other
  # variables (node group sizes are checked against each other).
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.28"
    }
  }
}
